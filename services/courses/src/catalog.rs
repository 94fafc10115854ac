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

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

mod level;
mod tables;
#[cfg(test)]
mod tests;

pub use self::level::Level;
use self::tables::{
    AREAS, Area, CLOSERS, FIRST_NAMES, FORMATS, Format, GENERIC_LESSONS, LAST_NAMES, OPENERS,
};

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
