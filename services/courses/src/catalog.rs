//! Deterministic seed catalog for the courses service.
//!
//! On first start the courses service fills an empty database with the
//! catalog returned by [`generate`]. The generator is a pure function of its
//! seed, and that is the whole point of it:
//!
//! - **Every replica and every database seeds the same catalog.** Two
//!   instances started against fresh databases (or a database wiped and
//!   re-seeded) end up with byte-identical courses, so ids never drift between
//!   environments.
//! - **Tests, docs and the load generator can name real ids.** `c0001`,
//!   `c0042-l03` and friends exist in every deployment seeded with
//!   [`DEFAULT_SEED`], so a `curl` example or an end-to-end test can hard-code
//!   them, and the load generator can compute the catalog locally (ids plus
//!   [`SeedCourse::popularity`]) instead of crawling the API first.
//!
//! To keep that promise across platforms and dependency upgrades, randomness
//! comes only from the raw output stream of [`ChaCha8Rng`], whose values are
//! fixed by the ChaCha algorithm itself. We deliberately do *not* use `rand`'s
//! range/shuffle/distribution helpers: their algorithms are allowed to change
//! between `rand` releases, and `StdRng` may even switch generator. The few
//! helpers we need (bounded integers, shuffles) are implemented below on top
//! of `next_u64`, and no floating-point maths beyond one IEEE division is
//! involved, so the output does not depend on the platform's `libm` either.

use std::collections::HashSet;
use std::fmt;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// Seed used by the service unless configured otherwise.
///
/// It is the ASCII bytes of `"LEARNSPH"`; any value works, but changing it
/// changes every generated title, price and lesson id, so treat it as part of
/// the public contract.
pub const DEFAULT_SEED: u64 = 0x4C45_4152_4E53_5048;

/// Number of courses in every generated catalog.
///
/// Ids are derived from the course's position, so a fixed count keeps the set
/// of valid course ids (`c0001..=c0260`) independent of the seed.
pub const COURSE_COUNT: usize = 260;

/// Currency of every seeded price.
pub const CURRENCY: &str = "USD";

/// Fewest lessons a generated course has.
pub const MIN_LESSONS: usize = 6;

/// Most lessons a generated course has.
pub const MAX_LESSONS: usize = 18;

/// The fixed tag vocabulary. Every seeded course carries 1–4 of these.
///
/// A closed list (rather than free-form tags) keeps tag filters in the API
/// and the load generator meaningful: every tag here matches several courses.
pub const TAGS: &[&str] = &[
    "accounting",
    "beginner-friendly",
    "business",
    "career",
    "cloud",
    "creative",
    "data",
    "databases",
    "design",
    "devops",
    "finance",
    "hands-on",
    "javascript",
    "kubernetes",
    "languages",
    "linux",
    "machine-learning",
    "marketing",
    "mobile",
    "music",
    "networking",
    "photography",
    "productivity",
    "programming",
    "python",
    "rust",
    "security",
    "spanish",
    "sql",
    "statistics",
    "ux",
    "web",
];

/// Difficulty of a course.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Beginner,
    Intermediate,
    Advanced,
}

impl Level {
    /// Every level, easiest first.
    pub const ALL: [Level; 3] = [Level::Beginner, Level::Intermediate, Level::Advanced];

    /// Lowercase wire/database representation (`"beginner"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Beginner => "beginner",
            Level::Intermediate => "intermediate",
            Level::Advanced => "advanced",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A complete seed catalog, courses ordered by id.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub courses: Vec<SeedCourse>,
}

impl Catalog {
    /// Total number of lessons across all courses.
    pub fn lesson_count(&self) -> usize {
        self.courses.iter().map(|c| c.lessons.len()).sum()
    }

    /// Looks a course up by id (`"c0001"`).
    pub fn course(&self, id: &str) -> Option<&SeedCourse> {
        self.courses.iter().find(|c| c.id == id)
    }
}

/// One course of the seed catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedCourse {
    /// Stable, human-typable id: `c0001` ..= `c0260`.
    pub id: String,
    /// URL-friendly form of the title; unique across the catalog.
    pub slug: String,
    /// Unique across the catalog.
    pub title: String,
    pub summary: String,
    pub instructor: String,
    pub level: Level,
    /// 1–4 distinct entries of [`TAGS`].
    pub tags: Vec<String>,
    /// Price in cents: `0` (free) or a `.99` price between 9.99 and 199.99.
    pub price_cents: i64,
    /// Always [`CURRENCY`].
    pub currency: &'static str,
    /// Zipf weight `1 / rank` (rank 1 = most popular, weight 1.0).
    ///
    /// Use it directly as a sampling weight: a load generator that picks
    /// courses proportionally to it gets the long-tailed traffic real catalogs
    /// see, which is what makes cache and hot-row behaviour realistic.
    pub popularity: f64,
    /// Ordered by `position`.
    pub lessons: Vec<SeedLesson>,
}

/// One lesson of a seed course.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedLesson {
    /// `<course id>-lNN`, e.g. `c0001-l03`.
    pub id: String,
    /// 1-based and contiguous within the course.
    pub position: i32,
    pub title: String,
    pub duration_seconds: i32,
}

/// Generates the seed catalog for `seed`.
///
/// Pure and deterministic: the same seed yields an identical catalog on every
/// run, machine and platform (see the module docs for why that matters).
pub fn generate(seed: u64) -> Catalog {
    let base = ChaCha8Rng::seed_from_u64(seed);

    // Catalog-wide decisions use their own stream, and each course draws from
    // a stream of its own, so a tweak to how one course is built cannot
    // reshuffle the areas, instructors or popularity ranks of all the others.
    let mut rng = stream(&base, CATALOG_STREAM);

    // Round-robin over a shuffled area order: every area gets the same number
    // of courses, but which area `c0001` belongs to still depends on the seed.
    let mut area_order: Vec<usize> = (0..AREAS.len()).collect();
    shuffle(&mut rng, &mut area_order);

    let instructors = instructor_pool(&mut rng);

    // A random permutation of ranks, so popularity is not correlated with id
    // order (otherwise "low ids are hot" would hide bugs in the load model).
    let mut ranks: Vec<usize> = (1..=COURSE_COUNT).collect();
    shuffle(&mut rng, &mut ranks);

    // Only used for membership tests, never iterated, so their hash order
    // cannot leak into the output.
    let mut taken = TakenNames::default();

    let courses = (0..COURSE_COUNT)
        .map(|index| {
            let mut rng = stream(&base, COURSE_STREAM_BASE + index as u64);
            let area_index = area_order[index % AREAS.len()];
            build_course(
                &mut rng,
                index,
                &AREAS[area_index],
                &instructors[area_index],
                ranks[index],
                &mut taken,
            )
        })
        .collect();

    Catalog { courses }
}

// ---------------------------------------------------------------------------
// Course assembly
// ---------------------------------------------------------------------------

const CATALOG_STREAM: u64 = 0;
const COURSE_STREAM_BASE: u64 = 1;

/// Random (subject, format) draws tried before falling back to a "Part N"
/// suffix. A handful is plenty: each area offers dozens of combinations for
/// only ten courses.
const TITLE_ATTEMPTS: usize = 8;

const INSTRUCTORS_PER_AREA: usize = 3;

/// Titles and slugs already handed out, to keep both unique.
#[derive(Default)]
struct TakenNames {
    titles: HashSet<String>,
    slugs: HashSet<String>,
}

impl TakenNames {
    fn is_free(&self, title: &str, slug: &str) -> bool {
        !self.titles.contains(title) && !self.slugs.contains(slug)
    }

    fn take(&mut self, title: &str, slug: &str) {
        self.titles.insert(title.to_owned());
        self.slugs.insert(slug.to_owned());
    }
}

fn build_course(
    rng: &mut ChaCha8Rng,
    index: usize,
    area: &Area,
    instructors: &[String],
    rank: usize,
    taken: &mut TakenNames,
) -> SeedCourse {
    let id = format!("c{:04}", index + 1);
    let (title, slug, subject, format) = choose_title(rng, area, taken);
    let level = format.level;
    let (lessons, topic_titles) = build_lessons(rng, &id, area, level);
    let summary = build_summary(rng, format, subject, area, &topic_titles);
    let tags = build_tags(rng, area, format);
    let price_cents = price_cents(rng, level);
    let instructor = pick(rng, instructors).clone();

    SeedCourse {
        id,
        slug,
        title,
        summary,
        instructor,
        level,
        tags,
        price_cents,
        currency: CURRENCY,
        // Classic Zipf with exponent 1. `1 / rank` is a single correctly
        // rounded IEEE division, so unlike `powf` it is bit-identical on every
        // platform.
        popularity: 1.0 / rank as f64,
        lessons,
    }
}

fn choose_title(
    rng: &mut ChaCha8Rng,
    area: &Area,
    taken: &mut TakenNames,
) -> (String, String, &'static str, &'static Format) {
    let mut draw = || {
        let subject = *pick(rng, area.subjects);
        let format = pick(rng, FORMATS);
        (subject, format, format.template.replace("{}", subject))
    };

    let mut last = draw();
    for _ in 1..TITLE_ATTEMPTS {
        if taken.is_free(&last.2, &slugify(&last.2)) {
            break;
        }
        last = draw();
    }

    let (subject, format, base_title) = last;
    let mut title = base_title.clone();
    let mut slug = slugify(&title);
    // Disambiguate the rare leftover collision the way real catalogs do. The
    // loop terminates: every `part` yields a title (and slug) never seen before.
    let mut part = 2;
    while !taken.is_free(&title, &slug) {
        title = format!("{base_title}, Part {part}");
        slug = slugify(&title);
        part += 1;
    }
    taken.take(&title, &slug);
    (title, slug, subject, format)
}

/// Builds the syllabus and also returns the area-topic lesson titles, which
/// the summary quotes so it always matches the course's actual content.
fn build_lessons(
    rng: &mut ChaCha8Rng,
    course_id: &str,
    area: &Area,
    level: Level,
) -> (Vec<SeedLesson>, Vec<&'static str>) {
    let count = MIN_LESSONS + below(rng, MAX_LESSONS - MIN_LESSONS + 1);
    // First and last lessons are always an opener and a closer.
    let middle = count - 2;

    // Mostly area topics; a few generic lessons ("Hands-on lab: ...") for
    // variety, and as the fallback when a course is longer than its area's
    // topic list. `static_tables_are_consistent` checks the tables are big
    // enough for this arithmetic.
    let min_generic = middle.saturating_sub(area.topics.len());
    let generic = min_generic.max(below(rng, 3)).min(middle - 1);
    let topic_count = middle - generic;

    // Topic lists are in teaching order: beginner courses draw from the
    // earlier ~70% of the list, advanced ones from the later ~70%, and the
    // chosen subset stays sorted so the syllabus still reads in order.
    let all = area.topics.len();
    let window = topic_count.max(all * 7 / 10);
    let candidates = match level {
        Level::Beginner => 0..window,
        Level::Intermediate => 0..all,
        Level::Advanced => all - window..all,
    };
    let mut topic_indices: Vec<usize> = candidates.collect();
    shuffle(rng, &mut topic_indices);
    topic_indices.truncate(topic_count);
    topic_indices.sort_unstable();
    let topics: Vec<&'static str> = topic_indices.iter().map(|&i| area.topics[i]).collect();

    // Each generic lesson follows (and names) one topic lesson. Templates are
    // distinct, so two generic lessons on the same topic still differ.
    let mut templates: Vec<&'static str> = GENERIC_LESSONS.to_vec();
    shuffle(rng, &mut templates);
    let mut attached: Vec<Vec<&'static str>> = vec![Vec::new(); topics.len()];
    for &template in templates.iter().take(generic) {
        attached[below(rng, topics.len())].push(template);
    }

    let (topic_min, topic_max) = match level {
        Level::Beginner => (300, 900),
        Level::Intermediate => (420, 1200),
        Level::Advanced => (600, 1500),
    };

    let mut plan: Vec<(String, i32)> = Vec::with_capacity(count);
    plan.push((pick(rng, OPENERS).to_string(), between(rng, 120, 420)));
    for (topic, generics) in topics.iter().zip(&attached) {
        plan.push((topic.to_string(), between(rng, topic_min, topic_max)));
        for template in generics {
            plan.push((template.replace("{}", topic), between(rng, 240, 900)));
        }
    }
    plan.push((pick(rng, CLOSERS).to_string(), between(rng, 900, 2400)));

    let lessons = (1..)
        .zip(plan)
        .map(|(position, (title, duration_seconds))| SeedLesson {
            id: format!("{course_id}-l{position:02}"),
            position,
            title,
            duration_seconds,
        })
        .collect();
    (lessons, topics)
}

fn build_summary(
    rng: &mut ChaCha8Rng,
    format: &Format,
    subject: &str,
    area: &Area,
    topics: &[&'static str],
) -> String {
    let pitch = format.pitch.replace("{}", subject);
    // Quote up to three real lesson titles, in syllabus order.
    let mut picks: Vec<usize> = (0..topics.len()).collect();
    shuffle(rng, &mut picks);
    picks.truncate(3);
    picks.sort_unstable();
    let quoted: Vec<String> = picks
        .iter()
        .map(|&i| format!("\"{}\"", topics[i]))
        .collect();
    format!(
        "{pitch} Lessons include {}. Designed for {}.",
        english_list(&quoted),
        area.audience
    )
}

fn build_tags(rng: &mut ChaCha8Rng, area: &Area, format: &Format) -> Vec<String> {
    let mut tags: Vec<&'static str> = area.tags.to_vec();
    shuffle(rng, &mut tags);
    // At most three subject tags, leaving room for one format facet.
    let keep = 1 + below(rng, tags.len().min(3));
    tags.truncate(keep);
    if let Some(facet) = format.facet
        && chance(rng, 60)
        && !tags.contains(&facet)
    {
        tags.push(facet);
    }
    tags.into_iter().map(str::to_owned).collect()
}

/// Realistic price ladders per level; every paid price ends in `.99`.
const BEGINNER_PRICES: &[i64] = &[9, 14, 19, 24, 29, 34, 39, 49];
const INTERMEDIATE_PRICES: &[i64] = &[24, 29, 34, 39, 49, 59, 69, 79, 89, 99];
const ADVANCED_PRICES: &[i64] = &[59, 69, 79, 89, 99, 119, 129, 149, 179, 199];

fn price_cents(rng: &mut ChaCha8Rng, level: Level) -> i64 {
    // Free courses are mostly introductory "taster" courses.
    let (free_percent, ladder) = match level {
        Level::Beginner => (15, BEGINNER_PRICES),
        Level::Intermediate => (5, INTERMEDIATE_PRICES),
        Level::Advanced => (2, ADVANCED_PRICES),
    };
    if chance(rng, free_percent) {
        0
    } else {
        pick(rng, ladder) * 100 + 99
    }
}

/// Three distinct instructors per area (indexed like [`AREAS`]), all names
/// unique across the catalog.
fn instructor_pool(rng: &mut ChaCha8Rng) -> Vec<Vec<String>> {
    let combos = FIRST_NAMES.len() * LAST_NAMES.len();
    let mut used = vec![false; combos];
    (0..AREAS.len())
        .map(|_| {
            (0..INSTRUCTORS_PER_AREA)
                .map(|_| {
                    // Linear probing from a random start; it always finds a
                    // free slot because there are more combinations than
                    // instructors (asserted at compile time below).
                    let mut combo = below(rng, combos);
                    while used[combo] {
                        combo = (combo + 1) % combos;
                    }
                    used[combo] = true;
                    format!(
                        "{} {}",
                        FIRST_NAMES[combo / LAST_NAMES.len()],
                        LAST_NAMES[combo % LAST_NAMES.len()]
                    )
                })
                .collect()
        })
        .collect()
}

const _: () = assert!(AREAS.len() * INSTRUCTORS_PER_AREA < FIRST_NAMES.len() * LAST_NAMES.len());

// ---------------------------------------------------------------------------
// Small, version-proof randomness helpers (see module docs for why not `rand`)
// ---------------------------------------------------------------------------

fn stream(base: &ChaCha8Rng, id: u64) -> ChaCha8Rng {
    let mut rng = base.clone();
    rng.set_stream(id);
    rng
}

/// Uniform-enough integer in `0..n` (`n > 0`) by multiply-shift. The bias is
/// below `n / 2^64`, irrelevant for choosing among a few hundred items, and
/// the mapping is fixed forever, unlike `rand`'s sampling algorithms.
fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    debug_assert!(n > 0, "below(0) has no valid result");
    // The product shifted right by 64 is < n, so it fits back into usize.
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Integer in `lo..=hi`.
fn between(rng: &mut ChaCha8Rng, lo: i32, hi: i32) -> i32 {
    debug_assert!(lo <= hi);
    let span = (i64::from(hi) - i64::from(lo) + 1) as usize;
    // The offset is < span, so `lo + offset <= hi` and fits i32.
    (i64::from(lo) + below(rng, span) as i64) as i32
}

/// True with probability `percent / 100`.
fn chance(rng: &mut ChaCha8Rng, percent: usize) -> bool {
    below(rng, 100) < percent
}

/// A uniformly chosen element of a non-empty slice (all our tables are
/// non-empty, checked by `static_tables_are_consistent`).
fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len())]
}

/// Fisher–Yates shuffle driven by [`below`].
fn shuffle<T>(rng: &mut ChaCha8Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i + 1);
        items.swap(i, j);
    }
}

// ---------------------------------------------------------------------------
// Text helpers
// ---------------------------------------------------------------------------

/// `"CI/CD Pipelines: A Deep Dive"` → `"ci-cd-pipelines-a-deep-dive"`.
fn slugify(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    for ch in title.chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

/// `["a"]` → `a`, `["a", "b"]` → `a and b`, `["a", "b", "c"]` → `a, b and c`.
fn english_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

// ---------------------------------------------------------------------------
// Static tables
// ---------------------------------------------------------------------------

/// A subject area: the unit that gives courses coherent titles, tags,
/// instructors and syllabi.
struct Area {
    /// Noun phrases that read well inside every [`FORMATS`] template.
    subjects: &'static [&'static str],
    /// Subject tags (at most three are used per course); all in [`TAGS`].
    tags: &'static [&'static str],
    /// Completes "Designed for ...".
    audience: &'static str,
    /// Lesson topics in teaching order.
    topics: &'static [&'static str],
}

/// A title pattern. The format decides the level, so "Introduction to X" is
/// never an advanced course and "Mastering X" never a beginner one.
struct Format {
    template: &'static str,
    level: Level,
    /// First sentence of the summary; `{}` is the subject.
    pitch: &'static str,
    /// Optional tag describing the format rather than the subject.
    facet: Option<&'static str>,
}

const FORMATS: &[Format] = &[
    Format {
        template: "Introduction to {}",
        level: Level::Beginner,
        pitch: "A gentle, no-prerequisites introduction to {}.",
        facet: Some("beginner-friendly"),
    },
    Format {
        template: "{} for Beginners",
        level: Level::Beginner,
        pitch: "Start from zero and build real confidence with {}.",
        facet: Some("beginner-friendly"),
    },
    Format {
        template: "{} Fundamentals",
        level: Level::Beginner,
        pitch: "The core ideas of {}, explained clearly and practised step by step.",
        facet: Some("beginner-friendly"),
    },
    Format {
        template: "{} Essentials",
        level: Level::Beginner,
        pitch: "Everything you need to be productive with {}, and nothing you don't.",
        facet: None,
    },
    Format {
        template: "{} Crash Course",
        level: Level::Beginner,
        pitch: "A fast-paced tour of {} for busy people.",
        facet: None,
    },
    Format {
        template: "Getting Started with {}",
        level: Level::Beginner,
        pitch: "Take your first steps with {} through short, focused lessons.",
        facet: Some("beginner-friendly"),
    },
    Format {
        template: "Practical {}",
        level: Level::Intermediate,
        pitch: "Apply {} to the kind of problems you meet at work.",
        facet: Some("hands-on"),
    },
    Format {
        template: "Hands-On {}",
        level: Level::Intermediate,
        pitch: "Learn {} by doing: every lesson ends with an exercise.",
        facet: Some("hands-on"),
    },
    Format {
        template: "{} by Example",
        level: Level::Intermediate,
        pitch: "Worked examples that show {} in realistic situations.",
        facet: Some("hands-on"),
    },
    Format {
        template: "Applied {}",
        level: Level::Intermediate,
        pitch: "Move from theory to practice with {}.",
        facet: None,
    },
    Format {
        template: "The Complete {} Bootcamp",
        level: Level::Intermediate,
        pitch: "An intensive, end-to-end programme covering {} from the ground up.",
        facet: Some("career"),
    },
    Format {
        template: "{} Workshop",
        level: Level::Intermediate,
        pitch: "A guided workshop where you build something real with {}.",
        facet: Some("hands-on"),
    },
    Format {
        template: "{}: Beyond the Basics",
        level: Level::Intermediate,
        pitch: "Already know the basics of {}? This course fills in the gaps.",
        facet: None,
    },
    Format {
        template: "Mastering {}",
        level: Level::Advanced,
        pitch: "Take your {} skills to an expert level.",
        facet: None,
    },
    Format {
        template: "{}: A Deep Dive",
        level: Level::Advanced,
        pitch: "An in-depth look at how {} really works, for experienced practitioners.",
        facet: None,
    },
    Format {
        template: "Advanced {}",
        level: Level::Advanced,
        pitch: "Advanced techniques in {} for people who use it every day.",
        facet: None,
    },
    Format {
        template: "{} Masterclass",
        level: Level::Advanced,
        pitch: "A masterclass in {}, distilled from years of real-world experience.",
        facet: Some("career"),
    },
];

const OPENERS: &[&str] = &[
    "Welcome and course overview",
    "Getting set up",
    "How this course works",
    "Course introduction",
];

const CLOSERS: &[&str] = &[
    "Capstone project",
    "Wrap-up and next steps",
    "Final project",
    "Putting it all together",
];

/// Generic lessons, `{}` being the topic they follow. Used for variety and as
/// the fallback when a course needs more lessons than its area has topics.
const GENERIC_LESSONS: &[&str] = &[
    "Hands-on lab: {}",
    "Common pitfalls: {}",
    "Case study: {}",
    "Practice quiz: {}",
    "Q&A: {}",
    "Exercise walkthrough: {}",
    "Tips from the field: {}",
    "Review: {}",
];

const FIRST_NAMES: &[&str] = &[
    "Ada", "Amara", "Andrés", "Anika", "Ben", "Carmen", "Chen", "Daniel", "Elena", "Farah",
    "Grace", "Hiroshi", "Ines", "Jamal", "Julia", "Kofi", "Laura", "Lucas", "Maya", "Mateo",
    "Nadia", "Noah", "Olga", "Priya", "Rafael", "Sara", "Tomás", "Wei", "Yasmin", "Zoe",
];

const LAST_NAMES: &[&str] = &[
    "Adeyemi",
    "Bauer",
    "Costa",
    "Dubois",
    "Eriksson",
    "Fischer",
    "García",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Martins",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Umarov",
    "Varga",
    "Walsh",
    "Xu",
    "Yilmaz",
    "Zhang",
    "Novak",
    "Moreau",
    "Kim",
    "O'Brien",
];

const AREAS: &[Area] = &[
    Area {
        subjects: &["Rust", "Async Rust", "Rust Web Services", "Embedded Rust"],
        tags: &["rust", "programming"],
        audience: "developers coming from other languages",
        topics: &[
            "Ownership and borrowing",
            "Structs, enums and pattern matching",
            "Error handling with Result",
            "Traits and generics",
            "Lifetimes in practice",
            "Iterators and closures",
            "Smart pointers",
            "Fearless concurrency",
            "Async/await with Tokio",
            "Testing and documentation",
            "Cargo workspaces",
            "Unsafe Rust and FFI",
        ],
    },
    Area {
        subjects: &[
            "Kubernetes",
            "Kubernetes Operations",
            "Kubernetes Networking",
            "Helm",
        ],
        tags: &["kubernetes", "devops", "cloud"],
        audience: "platform engineers and SREs",
        topics: &[
            "Pods, deployments and services",
            "ConfigMaps and Secrets",
            "Ingress and load balancing",
            "Persistent volumes",
            "Resource requests and limits",
            "Autoscaling workloads",
            "RBAC and service accounts",
            "Packaging apps with Helm charts",
            "Debugging failing pods",
            "Rolling updates and rollbacks",
            "Monitoring clusters with Prometheus",
            "Writing an operator",
        ],
    },
    Area {
        subjects: &[
            "Data Engineering",
            "Data Pipelines",
            "Apache Spark",
            "Apache Kafka",
        ],
        tags: &["data", "databases", "python"],
        audience: "analysts and engineers who move data for a living",
        topics: &[
            "Batch vs. streaming",
            "Designing a data lake",
            "ETL with Python",
            "Orchestrating jobs with Airflow",
            "Data modeling for analytics",
            "Partitioning and file formats",
            "Kafka topics and consumer groups",
            "Spark DataFrames",
            "Data quality checks",
            "Change data capture",
            "Cost-aware pipelines",
        ],
    },
    Area {
        subjects: &[
            "Statistics",
            "Statistical Modeling",
            "Bayesian Statistics",
            "Probability and Statistics",
        ],
        tags: &["statistics", "data"],
        audience: "anyone who has to make decisions from numbers",
        topics: &[
            "Descriptive statistics",
            "Probability distributions",
            "Sampling and the central limit theorem",
            "Confidence intervals",
            "Hypothesis testing",
            "Correlation vs. causation",
            "Linear regression",
            "A/B testing done right",
            "Nonparametric tests",
            "Bootstrap methods",
            "Bayesian inference",
        ],
    },
    Area {
        subjects: &[
            "UX Design",
            "User Research",
            "Interaction Design",
            "UX Writing",
        ],
        tags: &["ux", "design"],
        audience: "designers, product managers and curious developers",
        topics: &[
            "Running user interviews",
            "Personas and journey maps",
            "Information architecture",
            "Wireframing",
            "Prototyping in Figma",
            "Usability testing",
            "Accessibility basics",
            "Design systems",
            "Microcopy that helps",
            "Measuring UX",
        ],
    },
    Area {
        subjects: &[
            "Photography",
            "Portrait Photography",
            "Landscape Photography",
            "Photo Editing",
        ],
        tags: &["photography", "creative"],
        audience: "hobbyists with any camera, including a phone",
        topics: &[
            "Understanding exposure",
            "Aperture and depth of field",
            "Shutter speed and motion",
            "ISO and noise",
            "Composition rules and when to break them",
            "Working with natural light",
            "Studio lighting",
            "A Lightroom workflow",
            "Color grading",
            "Building a portfolio",
        ],
    },
    Area {
        subjects: &[
            "Spanish",
            "Conversational Spanish",
            "Spanish Grammar",
            "Business Spanish",
        ],
        tags: &["spanish", "languages"],
        audience: "learners who want to speak with confidence",
        topics: &[
            "Greetings and introductions",
            "Ser vs. estar",
            "Present tense verbs",
            "Ordering food and drinks",
            "Asking for directions",
            "The preterite tense",
            "The imperfect tense",
            "Travel vocabulary",
            "Talking about work",
            "The subjunctive mood",
            "Listening practice with native speakers",
        ],
    },
    Area {
        subjects: &[
            "Guitar",
            "Acoustic Guitar",
            "Blues Guitar",
            "Fingerstyle Guitar",
        ],
        tags: &["music", "creative"],
        audience: "players from their first chord to their first gig",
        topics: &[
            "Tuning and posture",
            "Open chords",
            "Strumming patterns",
            "Reading tabs",
            "Barre chords",
            "The pentatonic scale",
            "Fingerpicking basics",
            "Playing with a metronome",
            "Improvising over a 12-bar blues",
            "Learning songs by ear",
        ],
    },
    Area {
        subjects: &["Piano", "Jazz Piano", "Music Theory", "Piano Chords"],
        tags: &["music", "creative"],
        audience: "adult learners returning to music or starting fresh",
        topics: &[
            "Finding your way around the keyboard",
            "Reading sheet music",
            "Major and minor scales",
            "Triads and inversions",
            "Hand independence",
            "Rhythm and time signatures",
            "Seventh chords",
            "Voice leading",
            "Playing from a lead sheet",
            "Improvisation basics",
        ],
    },
    Area {
        subjects: &[
            "Accounting",
            "Financial Accounting",
            "Bookkeeping",
            "Managerial Accounting",
        ],
        tags: &["accounting", "finance", "business"],
        audience: "founders, freelancers and finance newcomers",
        topics: &[
            "The accounting equation",
            "Double-entry bookkeeping",
            "Journal entries",
            "The income statement",
            "The balance sheet",
            "Cash flow statements",
            "Accruals and deferrals",
            "Depreciation",
            "The month-end close",
            "Budgeting and variance analysis",
        ],
    },
    Area {
        subjects: &[
            "Machine Learning",
            "Deep Learning",
            "Machine Learning Engineering",
            "MLOps",
        ],
        tags: &["machine-learning", "python", "data"],
        audience: "developers and analysts comfortable writing code",
        topics: &[
            "Supervised vs. unsupervised learning",
            "Linear and logistic regression",
            "Decision trees and random forests",
            "Feature engineering",
            "Evaluating models",
            "Overfitting and regularization",
            "Neural network basics",
            "Training with PyTorch",
            "Hyperparameter tuning",
            "Deploying a model",
            "Monitoring models in production",
        ],
    },
    Area {
        subjects: &[
            "SQL",
            "PostgreSQL",
            "SQL for Data Analysis",
            "Database Design",
        ],
        tags: &["sql", "databases", "data"],
        audience: "analysts and backend developers",
        topics: &[
            "SELECT, WHERE and ORDER BY",
            "Joins explained",
            "Aggregation with GROUP BY",
            "Subqueries and CTEs",
            "Window functions",
            "Indexes and query plans",
            "Transactions and isolation levels",
            "Normalization",
            "Schema migrations",
            "Performance tuning",
        ],
    },
    Area {
        subjects: &[
            "Cloud Security",
            "AWS Security",
            "Zero Trust Architecture",
            "Identity and Access Management",
        ],
        tags: &["security", "cloud"],
        audience: "engineers responsible for production systems",
        topics: &[
            "The shared responsibility model",
            "Identities, roles and policies",
            "Least-privilege access",
            "Secrets management",
            "Network segmentation",
            "Encryption at rest and in transit",
            "Logging and threat detection",
            "Threat modeling",
            "Incident response",
            "Compliance frameworks",
        ],
    },
    Area {
        subjects: &[
            "Python",
            "Python Programming",
            "Python Automation",
            "Python Data Analysis",
        ],
        tags: &["python", "programming"],
        audience: "complete beginners and people automating their daily work",
        topics: &[
            "Variables and types",
            "Control flow",
            "Functions and modules",
            "Lists, dicts and sets",
            "Working with files",
            "Handling errors",
            "Object-oriented Python",
            "Virtual environments and packaging",
            "Calling web APIs",
            "Testing with pytest",
            "DataFrames with pandas",
        ],
    },
    Area {
        subjects: &["JavaScript", "TypeScript", "Node.js", "JavaScript Testing"],
        tags: &["javascript", "programming", "web"],
        audience: "web developers at any stage",
        topics: &[
            "Values, types and coercion",
            "Functions and closures",
            "Promises and async/await",
            "Working with the DOM",
            "Modules and bundlers",
            "TypeScript types",
            "Generics in TypeScript",
            "Error handling",
            "Testing with Vitest",
            "Building a REST API with Node.js",
        ],
    },
    Area {
        subjects: &[
            "Web Development",
            "React",
            "Frontend Development",
            "Full-Stack Web Development",
        ],
        tags: &["web", "javascript", "design"],
        audience: "aspiring and working web developers",
        topics: &[
            "Semantic HTML",
            "CSS layout with flexbox and grid",
            "Responsive design",
            "React components",
            "State management",
            "Client-side routing",
            "Forms and validation",
            "Fetching data",
            "Web performance",
            "Deploying a web app",
        ],
    },
    Area {
        subjects: &["DevOps", "Docker", "CI/CD Pipelines", "Terraform"],
        tags: &["devops", "cloud", "linux"],
        audience: "developers who want to own their delivery pipeline",
        topics: &[
            "Containers vs. virtual machines",
            "Writing a good Dockerfile",
            "Docker Compose for local development",
            "Continuous integration",
            "Continuous delivery",
            "Infrastructure as code",
            "Managing Terraform state",
            "GitOps",
            "Release strategies",
            "Monitoring and alerting",
        ],
    },
    Area {
        subjects: &[
            "Go",
            "Go Programming",
            "Concurrency in Go",
            "Go Microservices",
        ],
        tags: &["programming", "cloud"],
        audience: "backend developers",
        topics: &[
            "Packages and modules",
            "Structs and interfaces",
            "Errors as values",
            "Goroutines",
            "Channels and select",
            "Context and cancellation",
            "Writing HTTP servers",
            "Testing and benchmarks",
            "Profiling with pprof",
            "Building gRPC services",
        ],
    },
    Area {
        subjects: &[
            "Linux",
            "Linux Administration",
            "Bash Scripting",
            "Linux Security",
        ],
        tags: &["linux", "devops"],
        audience: "developers and aspiring system administrators",
        topics: &[
            "Navigating the filesystem",
            "Users and permissions",
            "Processes and signals",
            "Package management",
            "Managing services with systemd",
            "Shell scripting",
            "Text processing with grep, sed and awk",
            "Networking tools",
            "Disks and filesystems",
            "Troubleshooting a slow server",
        ],
    },
    Area {
        subjects: &[
            "Computer Networking",
            "TCP/IP",
            "Network Troubleshooting",
            "DNS and HTTP",
        ],
        tags: &["networking", "security", "linux"],
        audience: "developers and operators who want to know what happens on the wire",
        topics: &[
            "The OSI model",
            "IP addressing and subnets",
            "TCP vs. UDP",
            "How DNS resolution works",
            "HTTP/1.1 and HTTP/2",
            "TLS handshakes",
            "Routing basics",
            "Firewalls and NAT",
            "Packet capture with Wireshark",
            "Load balancers",
        ],
    },
    Area {
        subjects: &[
            "Digital Marketing",
            "SEO",
            "Content Marketing",
            "Email Marketing",
        ],
        tags: &["marketing", "business"],
        audience: "small-business owners and marketers",
        topics: &[
            "Defining your audience",
            "Keyword research",
            "On-page SEO",
            "Writing content that ranks",
            "Social media strategy",
            "Email campaigns that get opened",
            "Paid ads basics",
            "Marketing analytics",
            "Conversion optimization",
            "Building a content calendar",
        ],
    },
    Area {
        subjects: &[
            "Project Management",
            "Agile Project Management",
            "Scrum",
            "Product Management",
        ],
        tags: &["business", "productivity", "career"],
        audience: "new and aspiring project and product managers",
        topics: &[
            "Defining scope",
            "Estimating work",
            "Managing stakeholders",
            "Agile principles",
            "Running a sprint",
            "Kanban boards",
            "Managing risk",
            "Roadmapping",
            "Running retrospectives",
            "Communicating status",
        ],
    },
    Area {
        subjects: &[
            "Public Speaking",
            "Presentation Skills",
            "Storytelling",
            "Business Communication",
        ],
        tags: &["career", "productivity"],
        audience: "professionals who want to speak with impact",
        topics: &[
            "Overcoming stage fright",
            "Structuring a talk",
            "Opening strong",
            "Storytelling techniques",
            "Body language",
            "Using your voice",
            "Designing slides",
            "Handling questions",
            "Speaking online",
            "Rehearsal strategies",
        ],
    },
    Area {
        subjects: &[
            "Graphic Design",
            "Typography",
            "Logo Design",
            "Adobe Illustrator",
        ],
        tags: &["design", "creative"],
        audience: "creatives building a visual toolkit",
        topics: &[
            "Design principles",
            "Color theory",
            "Typography basics",
            "Layout and grids",
            "Working with vectors",
            "The logo design process",
            "Brand identity",
            "Preparing files for print",
            "Designing for social media",
            "Critiquing your own work",
        ],
    },
    Area {
        subjects: &[
            "Personal Finance",
            "Investing",
            "Budgeting",
            "Retirement Planning",
        ],
        tags: &["finance", "productivity"],
        audience: "anyone who wants to take control of their money",
        topics: &[
            "Building a budget",
            "Emergency funds",
            "Paying down debt",
            "How credit scores work",
            "Index funds",
            "Stocks and bonds",
            "Retirement accounts",
            "Tax basics",
            "Insurance essentials",
            "Setting financial goals",
        ],
    },
    Area {
        subjects: &[
            "Mobile App Development",
            "iOS Development",
            "Android Development",
            "Flutter",
        ],
        tags: &["mobile", "programming"],
        audience: "developers shipping their first or fiftieth app",
        topics: &[
            "Setting up the toolchain",
            "Layouts and navigation",
            "Lists and scrolling performance",
            "Handling user input",
            "Local storage",
            "Networking and offline support",
            "Push notifications",
            "Testing mobile apps",
            "Accessibility on mobile",
            "Publishing to the app stores",
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn same_seed_yields_identical_catalog() {
        assert_eq!(generate(DEFAULT_SEED), generate(DEFAULT_SEED));
        assert_eq!(generate(7), generate(7));
        assert_ne!(generate(1), generate(2), "different seeds should differ");
    }

    /// Pins a few values of the default catalog. If this fails, the catalog
    /// every deployment seeds has changed: that breaks ids that tests, docs
    /// and the load generator rely on, so only update it deliberately.
    #[test]
    fn default_catalog_is_pinned() {
        let catalog = generate(DEFAULT_SEED);
        let first = &catalog.courses[0];
        let last = &catalog.courses[COURSE_COUNT - 1];
        let fingerprint = (
            first.title.as_str(),
            first.lessons.len(),
            first.price_cents,
            last.title.as_str(),
            catalog.lesson_count(),
        );
        assert_eq!(fingerprint, PINNED);
    }

    const PINNED: (&str, usize, i64, &str, usize) = (
        "SQL for Data Analysis Masterclass",
        8,
        17_999,
        "Practical Bash Scripting",
        3_043,
    );

    #[test]
    fn exhausted_titles_get_a_part_suffix() {
        // Pre-take every title an area can produce, forcing the fallback.
        let area = &AREAS[0];
        let mut taken = TakenNames::default();
        for subject in area.subjects {
            for format in FORMATS {
                let title = format.template.replace("{}", subject);
                taken.take(&title, &slugify(&title));
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(DEFAULT_SEED);
        let (first, first_slug, ..) = choose_title(&mut rng, area, &mut taken);
        assert!(first.ends_with(", Part 2"), "{first}");
        assert!(first_slug.ends_with("-part-2"), "{first_slug}");
        // Asking again must still produce something new.
        let (second, ..) = choose_title(&mut rng, area, &mut taken);
        assert_ne!(first, second);
    }

    #[test]
    fn meets_minimum_sizes() {
        for seed in [DEFAULT_SEED, 0, 1, 42, u64::MAX] {
            let catalog = generate(seed);
            assert!(catalog.courses.len() >= 240, "seed {seed}");
            assert!(
                catalog.lesson_count() >= 2_400,
                "seed {seed}: {}",
                catalog.lesson_count()
            );
            for course in &catalog.courses {
                assert!(
                    (MIN_LESSONS..=MAX_LESSONS).contains(&course.lessons.len()),
                    "{}: {} lessons",
                    course.id,
                    course.lessons.len()
                );
            }
        }
    }

    #[test]
    fn ids_titles_and_slugs_are_unique_and_readable() {
        let catalog = generate(DEFAULT_SEED);
        let mut course_ids = HashSet::new();
        let mut lesson_ids = HashSet::new();
        let mut titles = HashSet::new();
        let mut slugs = HashSet::new();
        for (index, course) in catalog.courses.iter().enumerate() {
            assert_eq!(course.id, format!("c{:04}", index + 1));
            assert!(
                course_ids.insert(course.id.clone()),
                "duplicate {}",
                course.id
            );
            assert!(
                titles.insert(course.title.clone()),
                "duplicate {}",
                course.title
            );
            assert!(
                slugs.insert(course.slug.clone()),
                "duplicate {}",
                course.slug
            );
            assert!(!course.slug.is_empty());
            assert!(
                course
                    .slug
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            assert!(!course.summary.is_empty() && !course.instructor.is_empty());
            let mut lesson_titles = HashSet::new();
            for lesson in &course.lessons {
                assert!(lesson.id.starts_with(&format!("{}-l", course.id)));
                assert!(
                    lesson_ids.insert(lesson.id.clone()),
                    "duplicate {}",
                    lesson.id
                );
                assert!(
                    lesson_titles.insert(&lesson.title),
                    "{}: repeated lesson title",
                    course.id
                );
            }
        }
        assert!(catalog.course("c0001").is_some());
        assert!(catalog.course("c0001-l01").is_none());
        assert_eq!(catalog.courses[0].lessons[2].id, "c0001-l03");
    }

    #[test]
    fn tags_come_from_the_vocabulary() {
        for course in &generate(DEFAULT_SEED).courses {
            assert!(
                (1..=4).contains(&course.tags.len()),
                "{}: {:?}",
                course.id,
                course.tags
            );
            let distinct: HashSet<_> = course.tags.iter().collect();
            assert_eq!(
                distinct.len(),
                course.tags.len(),
                "{}: duplicate tag",
                course.id
            );
            for tag in &course.tags {
                assert!(
                    TAGS.contains(&tag.as_str()),
                    "{}: unknown tag {tag}",
                    course.id
                );
            }
        }
    }

    #[test]
    fn prices_are_realistic() {
        let catalog = generate(DEFAULT_SEED);
        let mut free = 0;
        let mut paid = Vec::new();
        for course in &catalog.courses {
            assert_eq!(course.currency, "USD");
            if course.price_cents == 0 {
                free += 1;
            } else {
                assert!(
                    (999..=19_999).contains(&course.price_cents),
                    "{}",
                    course.price_cents
                );
                assert_eq!(course.price_cents % 100, 99, "{}", course.price_cents);
                paid.push(course.price_cents);
            }
        }
        assert!(free > 0, "expected some free courses");
        assert!(
            free < catalog.courses.len() / 5,
            "too many free courses: {free}"
        );
        assert!(paid.iter().any(|&p| p < 3_000), "no cheap courses");
        assert!(paid.iter().any(|&p| p > 10_000), "no premium courses");
        let distinct: HashSet<_> = paid.iter().collect();
        assert!(distinct.len() >= 10, "prices not varied enough");
    }

    #[test]
    fn lesson_positions_are_contiguous() {
        for course in &generate(DEFAULT_SEED).courses {
            let positions: Vec<i32> = course.lessons.iter().map(|l| l.position).collect();
            let expected: Vec<i32> = (1..=course.lessons.len() as i32).collect();
            assert_eq!(positions, expected, "{}", course.id);
            for lesson in &course.lessons {
                assert!(
                    (60..=3_600).contains(&lesson.duration_seconds),
                    "{}",
                    lesson.id
                );
            }
        }
    }

    #[test]
    fn popularity_is_positive_and_skewed() {
        let catalog = generate(DEFAULT_SEED);
        let mut weights: Vec<f64> = catalog.courses.iter().map(|c| c.popularity).collect();
        assert!(weights.iter().all(|&w| w > 0.0 && w <= 1.0));
        let total: f64 = weights.iter().sum();
        assert!(total > 0.0);
        weights.sort_by(|a, b| b.total_cmp(a));
        let n = weights.len();
        let top_10: f64 = weights[..n / 10].iter().sum();
        let bottom_50: f64 = weights[n / 2..].iter().sum();
        assert!(
            top_10 > 3.0 * bottom_50,
            "top 10% = {top_10:.3}, bottom 50% = {bottom_50:.3}"
        );
        // Popularity must not simply follow id order.
        let first_decile: f64 = catalog.courses[..n / 10].iter().map(|c| c.popularity).sum();
        assert!(first_decile < top_10);
    }

    #[test]
    fn catalog_is_varied() {
        let catalog = generate(DEFAULT_SEED);
        for level in Level::ALL {
            let count = catalog.courses.iter().filter(|c| c.level == level).count();
            assert!(count >= 20, "only {count} {level} courses");
        }
        // Every tag in the vocabulary is useful as a filter.
        for tag in TAGS {
            let count = catalog
                .courses
                .iter()
                .filter(|c| c.tags.iter().any(|t| t == tag))
                .count();
            assert!(count >= 3, "tag {tag} used by only {count} courses");
        }
        let instructors: HashSet<&str> = catalog
            .courses
            .iter()
            .map(|c| c.instructor.as_str())
            .collect();
        assert!(instructors.len() >= 50);
    }

    #[test]
    fn static_tables_are_consistent() {
        assert!(AREAS.len() >= 20);
        assert!((25..=40).contains(&TAGS.len()));
        let vocabulary: HashSet<&str> = TAGS.iter().copied().collect();
        assert_eq!(vocabulary.len(), TAGS.len(), "duplicate tag in TAGS");
        for tag in TAGS {
            assert!(
                tag.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{tag}"
            );
        }
        assert!(!FORMATS.is_empty() && !OPENERS.is_empty() && !CLOSERS.is_empty());
        for format in FORMATS {
            assert_eq!(format.template.matches("{}").count(), 1);
            assert_eq!(format.pitch.matches("{}").count(), 1);
            if let Some(facet) = format.facet {
                assert!(vocabulary.contains(facet), "{facet}");
            }
        }
        for template in GENERIC_LESSONS {
            assert_eq!(template.matches("{}").count(), 1);
        }
        for area in AREAS {
            assert!(!area.subjects.is_empty());
            assert!((1..=3).contains(&area.tags.len()));
            for tag in area.tags {
                assert!(vocabulary.contains(tag), "{tag}");
            }
            // build_lessons needs topics plus generic fillers to cover the
            // longest course, and enough topics that most lessons are real.
            assert!(area.topics.len() >= 10);
            assert!(area.topics.len() + GENERIC_LESSONS.len() >= MAX_LESSONS - 2);
            let distinct: HashSet<_> = area.topics.iter().collect();
            assert_eq!(distinct.len(), area.topics.len());
            for topic in area.topics {
                assert!(
                    !OPENERS.contains(topic) && !CLOSERS.contains(topic),
                    "{topic}"
                );
            }
        }
        assert!(
            COURSE_COUNT.is_multiple_of(AREAS.len()),
            "areas should get equal shares"
        );
    }

    #[test]
    fn slugify_and_english_list() {
        assert_eq!(
            slugify("CI/CD Pipelines: A Deep Dive"),
            "ci-cd-pipelines-a-deep-dive"
        );
        assert_eq!(
            slugify("Node.js for Beginners, Part 2"),
            "node-js-for-beginners-part-2"
        );
        let items = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(english_list(&items(&["a"])), "a");
        assert_eq!(english_list(&items(&["a", "b"])), "a and b");
        assert_eq!(english_list(&items(&["a", "b", "c"])), "a, b and c");
    }
}
