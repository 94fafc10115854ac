//! The journeys: what a visitor or a learner does on LearnSphere, made of
//! calls to the gateway's typed client.
//!
//! Each journey run is a root span (`journey <name>`, in service
//! `loadgen`) whose baggage (`scenario`, `journey`, `synthetic=true`) goes
//! out with every request, so the services can tag their spans and a
//! trace can be told from real traffic. The data is generated: learners
//! registered for the run, course choices skewed towards the popular
//! courses (a Zipf law over the catalog's popularity ranking).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use gateway::client::{GatewayClient, Visitor};
use load_engine::{Iteration, Journey, JourneyFuture, Outcome};
use mesh::CallError;
use opentelemetry::{Context, KeyValue, baggage::BaggageExt as _, trace::TraceContextExt as _};
use rand::{Rng as _, seq::IndexedRandom as _};
use rand_distr::{Distribution as _, Zipf};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use users::model::{LoginRequest, RegisterRequest};

/// How many learners the pool keeps; sign-ups beyond it replace random
/// older ones, so a long surge does not grow memory without bound.
const MAX_LEARNERS: usize = 50_000;

/// Attempts of a setup checkout that failed on the system's side (a 5xx,
/// or no answer) before the setup gives up.
const SETUP_ATTEMPTS: u32 = 4;

/// How long the setup waits, in all, for a gateway that rate-limits it
/// (429 with `Retry-After`) before it gives up.
const SETUP_PATIENCE: Duration = Duration::from_secs(300);

/// A token is refreshed this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// The generated data journeys draw on (a scenario's `[data]`).
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    /// Learners registered (and given one course each) before the load
    /// starts, so `study` and `checkout` have someone to be.
    pub learners: usize,
    /// The exponent of the Zipf law course choices follow over the
    /// catalog's popularity ranking: 0 is uniform, 1.1 puts about a
    /// third of the choices on the top ten of 260 courses.
    pub course_popularity: f64,
    /// Share of checkouts that pick a course the learner already owns
    /// (the gateway answers 200 without charging).
    pub repeat_checkout: f64,
}

impl Default for DataSpec {
    fn default() -> Self {
        Self {
            learners: 20,
            course_popularity: 1.1,
            repeat_checkout: 0.05,
        }
    }
}

/// What every journey shares: the client, the catalog, the learners.
pub struct World {
    client: GatewayClient,
    scenario: String,
    /// A short random tag that makes this run's e-mail addresses unique.
    run_tag: String,
    data: DataSpec,
    /// Course ids, most popular first.
    courses: Vec<String>,
    zipf: Option<Zipf<f64>>,
    learners: Mutex<Vec<Arc<Learner>>>,
    /// Whether to send a synthetic `X-Forwarded-For` per visitor.
    forwarded_for: bool,
    /// How long the setup has waited on 429s so far.
    setup_waited: Mutex<Duration>,
}

/// A learner of this run.
pub struct Learner {
    email: String,
    password: String,
    user_id: String,
    /// Synthetic client address (RFC 2544 benchmarking range).
    address: String,
    state: Mutex<LearnerState>,
}

#[derive(Default)]
struct LearnerState {
    token: Option<(String, Instant)>,
    /// Courses they own.
    owned: Vec<String>,
}

impl Learner {
    fn owned(&self) -> Vec<String> {
        self.state.lock().expect("learner lock").owned.clone()
    }

    fn own(&self, course: &str) {
        let mut state = self.state.lock().expect("learner lock");
        if !state.owned.iter().any(|c| c == course) {
            state.owned.push(course.to_owned());
        }
    }
}

/// A checkout's answer: as [`classify`], and a 409 `purchase_in_progress`
/// is not a failure either. Two journeys of one simulated learner may buy
/// the same course at once, as a double-click does; the system's answer is
/// to charge once and tell the other to wait, which the journey then does.
fn classify_checkout<T>(result: &Result<T, CallError>) -> Outcome {
    match purchase_in_progress(result) {
        Some(_) => Outcome {
            status: Some(409),
            error: None,
        },
        None => classify(result),
    }
}

/// The wait a 409 `purchase_in_progress` asks for, if that is the answer.
fn purchase_in_progress<T>(result: &Result<T, CallError>) -> Option<Duration> {
    match result {
        Err(CallError::Status {
            status,
            code,
            retry_after,
            ..
        }) if status.as_u16() == 409 && code == "purchase_in_progress" => Some(
            retry_after
                .as_deref()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map_or(Duration::from_secs(1), Duration::from_secs)
                .min(Duration::from_secs(5)),
        ),
        _ => None,
    }
}

/// How a gateway call ended, as loadgen counts it. A 402 decline is the
/// card provider's answer, part of the story rather than a failure.
pub fn classify<T>(result: &Result<T, CallError>) -> Outcome {
    match result {
        Ok(_) => Outcome::ok(200),
        Err(CallError::Status { status, .. }) if status.as_u16() == 402 => Outcome {
            status: Some(402),
            error: None,
        },
        Err(CallError::Status { status, code, .. }) => {
            Outcome::failed(Some(status.as_u16()), format!("{} {code}", status.as_u16()))
        }
        Err(CallError::Unavailable(e)) => Outcome::failed(None, e.kind_str()),
        Err(CallError::Decode { .. }) => Outcome::failed(None, "undecodable response"),
    }
}

impl World {
    /// Reads the catalog's popularity ranking and registers the scenario's
    /// learners (each buying one popular course, so `study` has something
    /// to study from the first second).
    pub async fn prepare(
        client: GatewayClient,
        scenario: &str,
        data: &DataSpec,
        seed: u64,
        forwarded_for: bool,
    ) -> anyhow::Result<Arc<Self>> {
        let setup = Visitor::default();
        let mut courses = Vec::new();
        for page in 1.. {
            let mut attempt = 1;
            let page = loop {
                match client.courses(&setup, page, 100, None).await {
                    Ok(page) => break page,
                    // A system that has just been started or restarted
                    // (a stage's new settings) may need a moment.
                    Err(e)
                        if attempt < SETUP_ATTEMPTS
                            && e.status().is_none_or(|s| s.is_server_error()) =>
                    {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(e) => anyhow::bail!("reading the catalog through the gateway: {e}"),
                }
            };
            let done = page.items.len() < 100;
            courses.extend(page.items.into_iter().map(|c| c.id));
            if done || courses.len() >= 10_000 {
                break;
            }
        }
        anyhow::ensure!(!courses.is_empty(), "the catalog is empty");
        let zipf = (data.course_popularity > 0.0)
            .then(|| Zipf::new(courses.len() as f64, data.course_popularity).ok())
            .flatten();
        let world = Arc::new(Self {
            client,
            scenario: scenario.to_owned(),
            run_tag: format!("{:08x}", seed ^ u64::from(rand::random::<u32>())),
            data: data.clone(),
            courses,
            zipf,
            learners: Mutex::new(Vec::new()),
            forwarded_for,
            setup_waited: Mutex::new(Duration::ZERO),
        });
        // A few at a time: registration hashes a password (Argon2id), so a
        // burst of them would be a load test of its own.
        let mut rng = rand::rng();
        let mut pending = tokio::task::JoinSet::new();
        for i in 0..data.learners {
            let world = world.clone();
            let course = world.pick_course(&mut rng).to_owned();
            pending.spawn(async move {
                let tag = format!("setup-{i}");
                let learner = world.paced(|| world.register(&tag)).await?;
                let (token, _) = world.paced(|| world.login(&learner)).await?;
                let visitor = Visitor {
                    token: Some(token),
                    forwarded_for: world.forwarded_for.then(|| learner.address.clone()),
                };
                // One key for every attempt: a retry after a failed or
                // unanswered attempt charges at most once.
                let key = uuid::Uuid::new_v4().to_string();
                let mut attempt = 1;
                loop {
                    match world.client.checkout(&visitor, &course, &key).await {
                        Ok(_) => learner.own(&course),
                        Err(CallError::Status { status, .. }) if status.as_u16() == 402 => {}
                        // A replica restarting (a scenario's crash) is
                        // transient: the setup waits it out a few times.
                        Err(e)
                            if attempt < SETUP_ATTEMPTS
                                && e.status().is_none_or(|s| s.is_server_error()) =>
                        {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                        Err(e) => anyhow::bail!("setup checkout of {course}: {e}"),
                    }
                    break;
                }
                world.add_learner(learner);
                anyhow::Ok(())
            });
            if pending.len() >= 4
                && let Some(done) = pending.join_next().await
            {
                done??;
            }
        }
        while let Some(done) = pending.join_next().await {
            done??;
        }
        Ok(world)
    }

    /// Runs a setup call again while the gateway answers 429, after the
    /// `Retry-After` it names: a gateway that does not trust loadgen's
    /// per-learner `X-Forwarded-For` (one not started by loadgen) sees
    /// every sign-up come from one address, and its per-address limit on
    /// credentials would otherwise end the setup. Gives up after
    /// [`SETUP_PATIENCE`] of waiting, in all.
    async fn paced<T, F, Fut>(&self, call: F) -> Result<T, CallError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        loop {
            match call().await {
                Err(CallError::Status {
                    status,
                    retry_after,
                    ..
                }) if status.as_u16() == 429 => {
                    let wait = retry_after
                        .as_deref()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map_or(Duration::from_secs(1), Duration::from_secs)
                        .clamp(Duration::from_millis(100), Duration::from_secs(60));
                    let waited = {
                        let mut waited = self.setup_waited.lock().expect("setup lock");
                        let first = waited.is_zero();
                        *waited += wait;
                        if first {
                            eprintln!(
                                "the gateway rate-limits this client's sign-ups (429): the setup paces itself, \
                                 waiting as Retry-After says (docs/decisions.md, 16)"
                            );
                        }
                        *waited
                    };
                    if waited > SETUP_PATIENCE {
                        return Err(CallError::Status {
                            destination: "gateway".into(),
                            status,
                            code: "too_many_requests".into(),
                            message: format!(
                                "still rate-limited after waiting {}s in all; \
                                 run the gateway with RATE_LIMIT_TRUST_FORWARDED_FOR=true for load tests",
                                waited.as_secs()
                            ),
                            body: None,
                            retry_after,
                        });
                    }
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// A course, most popular ones most often.
    fn pick_course(&self, rng: &mut impl rand::Rng) -> &str {
        let index = match &self.zipf {
            Some(zipf) => (zipf.sample(rng) as usize).saturating_sub(1),
            None => rng.random_range(0..self.courses.len()),
        };
        &self.courses[index.min(self.courses.len() - 1)]
    }

    fn synthetic_address(rng: &mut impl rand::Rng) -> String {
        // 198.18.0.0/15 is set aside for benchmarking (RFC 2544): never a
        // real client.
        format!(
            "198.{}.{}.{}",
            18 + rng.random_range(0..2),
            rng.random_range(0..=255),
            rng.random_range(1..=254)
        )
    }

    fn anonymous(&self, rng: &mut impl rand::Rng) -> Visitor {
        Visitor {
            token: None,
            forwarded_for: self.forwarded_for.then(|| Self::synthetic_address(rng)),
        }
    }

    /// Registers a new learner (not yet in the pool).
    async fn register(&self, tag: &str) -> Result<Arc<Learner>, CallError> {
        // Drawn before the first await: the thread's generator is not Send.
        let (email, password, address) = {
            let mut rng = rand::rng();
            (
                format!(
                    "learner-{}-{tag}-{:06x}@loadgen.example",
                    self.run_tag,
                    rng.random::<u32>() & 0xff_ffff
                ),
                format!("pw-{:016x}", rng.random::<u64>()),
                Self::synthetic_address(&mut rng),
            )
        };
        let user = self
            .client
            .register(
                &Visitor {
                    token: None,
                    forwarded_for: self.forwarded_for.then(|| address.clone()),
                },
                &RegisterRequest {
                    email: email.clone(),
                    display_name: format!("Learner {tag}"),
                    password: password.clone(),
                },
            )
            .await?;
        Ok(Arc::new(Learner {
            email,
            password,
            user_id: user.id,
            address,
            state: Mutex::new(LearnerState::default()),
        }))
    }

    fn add_learner(&self, learner: Arc<Learner>) {
        let mut learners = self.learners.lock().expect("learners lock");
        if learners.len() < MAX_LEARNERS {
            learners.push(learner);
        } else {
            let at = rand::rng().random_range(0..learners.len());
            learners[at] = learner;
        }
    }

    fn pick_learner(&self, rng: &mut impl rand::Rng, owning: bool) -> Option<Arc<Learner>> {
        let learners = self.learners.lock().expect("learners lock");
        if !owning {
            return learners.choose(rng).cloned();
        }
        // A handful of tries: most learners own a course.
        (0..8)
            .filter_map(|_| learners.choose(rng))
            .find(|l| !l.state.lock().expect("learner lock").owned.is_empty())
            .cloned()
    }

    /// The learner as a signed-in visitor if their token is still good.
    fn cached_visitor(&self, learner: &Learner) -> Option<Visitor> {
        let state = learner.state.lock().expect("learner lock");
        let (token, expires) = state.token.as_ref()?;
        (*expires > Instant::now() + TOKEN_MARGIN).then(|| Visitor {
            token: Some(token.clone()),
            forwarded_for: self.forwarded_for.then(|| learner.address.clone()),
        })
    }

    /// The learner as a signed-in visitor, logging in first (a timed
    /// request of the journey) when they have no good token.
    async fn sign_in(&self, learner: &Learner, it: &mut Iteration) -> Option<Visitor> {
        if let Some(visitor) = self.cached_visitor(learner) {
            return Some(visitor);
        }
        let (token, _) = it
            .request("POST /api/sessions", self.login(learner), classify)
            .await
            .ok()?;
        Some(Visitor {
            token: Some(token),
            forwarded_for: self.forwarded_for.then(|| learner.address.clone()),
        })
    }

    async fn login(&self, learner: &Learner) -> Result<(String, Instant), CallError> {
        let session = self
            .client
            .login(
                &Visitor {
                    token: None,
                    forwarded_for: self.forwarded_for.then(|| learner.address.clone()),
                },
                &LoginRequest {
                    email: learner.email.clone(),
                    password: learner.password.clone(),
                },
            )
            .await?;
        let entry = (
            session.access_token,
            Instant::now() + Duration::from_secs(session.expires_in),
        );
        learner.state.lock().expect("learner lock").token = Some(entry.clone());
        Ok(entry)
    }

    /// The root span of one journey run, with the run's baggage.
    fn journey_span(&self, journey: &'static str) -> tracing::Span {
        let span = tracing::info_span!(
            "journey",
            otel.name = format!("journey {journey}"),
            otel.kind = "internal",
            otel.status_code = tracing::field::Empty,
            loadgen.scenario = %self.scenario,
            loadgen.journey = journey,
            error.type = tracing::field::Empty,
        );
        // A root: no caller's context, only ours.
        let cx = Context::new().with_baggage([
            KeyValue::new("scenario", self.scenario.clone()),
            KeyValue::new("journey", journey),
            KeyValue::new("synthetic", "true"),
        ]);
        let _ = span.set_parent(cx);
        span
    }

    /// Opens journey `name`'s root span and puts its trace id on the
    /// iteration, so the slowest and failed runs can be linked to traces.
    fn start(&self, name: &'static str, it: &mut Iteration) -> tracing::Span {
        let span = self.journey_span(name);
        let trace_id = span.context().span().span_context().trace_id();
        if trace_id != opentelemetry::trace::TraceId::INVALID {
            it.set_trace_id(trace_id.to_string());
        }
        span
    }
}

/// Marks the journey's span failed with the iteration's first failure.
fn finish(it: &Iteration, span: &tracing::Span) {
    if let Some(failure) = it.failure() {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", failure);
    }
}

/// Implements [`Journey`] for a journey type from its `async fn visit`.
macro_rules! journey {
    ($ty:ident, $name:literal) => {
        impl Journey for $ty {
            fn run<'a>(&'a self, it: &'a mut Iteration) -> JourneyFuture<'a> {
                let span = self.0.start($name, it);
                let finished = span.clone();
                Box::pin(
                    async move {
                        self.visit(it).await;
                        finish(it, &finished);
                    }
                    .instrument(span),
                )
            }
        }
    };
}

/// Anonymous: a page of the catalog, one course, its course page.
pub struct Browse(pub Arc<World>);
journey!(Browse, "browse");

impl Browse {
    async fn visit(&self, it: &mut Iteration) {
        let world = &self.0;
        let visitor = world.anonymous(it.rng());
        let page = it.rng().random_range(1..=3);
        let tag = it.rng().random_bool(0.2).then_some("rust");
        let listed = it
            .request(
                "GET /api/courses",
                world.client.courses(&visitor, page, 20, tag),
                classify,
            )
            .await;
        if listed.is_err() {
            return;
        }
        let course = world.pick_course(it.rng()).to_owned();
        let _ = it
            .request(
                "GET /api/courses/{course_id}",
                world.client.course(&visitor, &course),
                classify,
            )
            .await;
        let _ = it
            .request(
                "GET /api/courses/{course_id}/page",
                world.client.course_page(&visitor, &course),
                classify,
            )
            .await;
    }
}

/// A newcomer registers, logs in, looks at who they are, and joins the
/// pool of learners later journeys draw on.
pub struct Signup(pub Arc<World>);
journey!(Signup, "signup");

impl Signup {
    async fn visit(&self, it: &mut Iteration) {
        let world = &self.0;
        let tag = format!("{:08x}", it.rng().random::<u32>());
        let Ok(learner) = it
            .request("POST /api/users", world.register(&tag), classify)
            .await
        else {
            return;
        };
        let Some(visitor) = world.sign_in(&learner, it).await else {
            return;
        };
        let _ = it
            .request("GET /api/me", world.client.me(&visitor), classify)
            .await;
        world.add_learner(learner);
    }
}

/// A learner opens a course page, buys the course, and lists their
/// enrollments.
pub struct Checkout(pub Arc<World>);
journey!(Checkout, "checkout");

impl Checkout {
    async fn visit(&self, it: &mut Iteration) {
        let world = &self.0;
        let Some(learner) = world.pick_learner(it.rng(), false) else {
            it.fail("no learner registered yet");
            return;
        };
        let Some(visitor) = world.sign_in(&learner, it).await else {
            return;
        };
        let owned = learner.owned();
        let repeat = !owned.is_empty() && it.rng().random_bool(world.data.repeat_checkout);
        let course = if repeat {
            owned.choose(it.rng()).cloned().unwrap_or_default()
        } else {
            // Popular courses most often, but not one they have.
            let mut course = world.pick_course(it.rng()).to_owned();
            for _ in 0..8 {
                if !owned.contains(&course) {
                    break;
                }
                course = world.pick_course(it.rng()).to_owned();
            }
            course
        };
        let page = it
            .request(
                "GET /api/courses/{course_id}/page",
                world.client.course_page(&visitor, &course),
                classify,
            )
            .await;
        if page.is_err() {
            return;
        }
        let key = uuid::Uuid::new_v4().to_string();
        let mut bought = it
            .request(
                "POST /api/checkout",
                world.client.checkout(&visitor, &course, &key),
                classify_checkout,
            )
            .await;
        // Bought at this moment by another journey of the same learner:
        // wait as told, and ask again with the same key, which answers
        // with that purchase once it is done.
        for _ in 0..3 {
            let Some(wait) = purchase_in_progress(&bought) else {
                break;
            };
            tokio::time::sleep(wait).await;
            bought = it
                .request(
                    "POST /api/checkout",
                    world.client.checkout(&visitor, &course, &key),
                    classify_checkout,
                )
                .await;
        }
        if purchase_in_progress(&bought).is_some() {
            it.fail("POST /api/checkout: still purchase_in_progress after three waits");
        }
        if bought.is_ok() {
            learner.own(&course);
        }
        let _ = it
            .request(
                "GET /api/users/{user_id}/enrollments",
                world.client.enrollments(&visitor, &learner.user_id),
                classify,
            )
            .await;
    }
}

/// A learner opens one of their courses, completes the next lesson, and
/// looks at their enrollments.
pub struct Study(pub Arc<World>);
journey!(Study, "study");

impl Study {
    async fn visit(&self, it: &mut Iteration) {
        let world = &self.0;
        let Some(learner) = world.pick_learner(it.rng(), true) else {
            it.fail("no learner owns a course yet");
            return;
        };
        let Some(visitor) = world.sign_in(&learner, it).await else {
            return;
        };
        let course = learner
            .owned()
            .choose(it.rng())
            .cloned()
            .unwrap_or_default();
        let Ok(page) = it
            .request(
                "GET /api/courses/{course_id}/page",
                world.client.course_page(&visitor, &course),
                classify,
            )
            .await
        else {
            return;
        };
        // The first lesson not completed yet; a finished course is studied
        // again from its first lesson (completing is idempotent). Without
        // progress (degraded page) the first lesson too.
        let done: Vec<String> = page
            .progress
            .map(|p| p.completed_lesson_ids)
            .unwrap_or_default();
        let next = page
            .course
            .lessons
            .iter()
            .find(|l| !done.contains(&l.id))
            .or(page.course.lessons.first())
            .map(|l| l.id.clone());
        if let Some(lesson) = next {
            let _ = it
                .request(
                    "POST /api/users/{user_id}/courses/{course_id}/lessons/{lesson_id}/complete",
                    world
                        .client
                        .complete_lesson(&visitor, &learner.user_id, &course, &lesson),
                    classify,
                )
                .await;
        }
        let _ = it
            .request(
                "GET /api/users/{user_id}/enrollments",
                world.client.enrollments(&visitor, &learner.user_id),
                classify,
            )
            .await;
    }
}

/// A journey a scenario can name: what it is called, what it does (shown
/// by `loadgen scenarios --journeys` and in errors), and how it is made.
pub struct JourneyKind {
    pub name: &'static str,
    pub about: &'static str,
    make: fn(&Arc<World>) -> Arc<dyn Journey>,
}

/// Every journey, the one list scenarios, the command line and the plan
/// read.
pub const JOURNEYS: [JourneyKind; 4] = [
    JourneyKind {
        name: "browse",
        about: "anonymous: a catalog page, a course, its course page",
        make: |world| Arc::new(Browse(world.clone())),
    },
    JourneyKind {
        name: "signup",
        about: "a new learner registers and logs in (joins the learner pool)",
        make: |world| Arc::new(Signup(world.clone())),
    },
    JourneyKind {
        name: "checkout",
        about: "a learner opens a course page, buys the course, lists their enrollments",
        make: |world| Arc::new(Checkout(world.clone())),
    },
    JourneyKind {
        name: "study",
        about: "a learner reads their progress, completes the next lesson, lists enrollments",
        make: |world| Arc::new(Study(world.clone())),
    },
];

/// The journey called `name`.
pub fn named(world: &Arc<World>, name: &str) -> Option<Arc<dyn Journey>> {
    JOURNEYS
        .iter()
        .find(|j| j.name == name)
        .map(|j| (j.make)(world))
}
