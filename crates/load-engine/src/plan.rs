//! What to run: executors, each with its own model, timing and weighted
//! journeys. The caller builds the [`Plan`] (from a scenario file, say);
//! here it is checked once, before anything starts, so a bad plan is an
//! error message and never a panic half-way through a run.

use std::{fmt, sync::Arc, time::Duration};

use crate::{
    journey::Journey,
    schedule::{ArrivalSchedule, Stage},
};

/// Everything one run does.
#[derive(Clone, Default)]
pub struct Plan {
    pub executors: Vec<ExecutorPlan>,
}

/// One executor: a model of arriving users, when it runs, and which
/// journeys those users take.
#[derive(Clone)]
pub struct ExecutorPlan {
    /// Unique in the plan; a metric label and the key of its statistics.
    pub name: String,
    /// From the start of the run.
    pub start: Duration,
    pub model: Model,
    /// Each arrival (or iteration) picks one, with probability
    /// proportional to its weight.
    pub journeys: Vec<WeightedJourney>,
}

/// A journey an executor may pick.
#[derive(Clone)]
pub struct WeightedJourney {
    /// The journey's name in the statistics; the same name in several
    /// executors is one journey in the results.
    pub name: &'static str,
    pub weight: u32,
    pub journey: Arc<dyn Journey>,
}

/// How users arrive.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// Open model: `rate` new journeys per second, whether or not the
    /// earlier ones have finished.
    ConstantArrivalRate {
        rate: f64,
        duration: Duration,
        pool: Pool,
    },
    /// Open model: the rate ramps linearly from `start_rate` through each
    /// stage's target (k6's `ramping-arrival-rate`).
    RampingArrivalRate {
        start_rate: f64,
        stages: Vec<Stage>,
        pool: Pool,
    },
    /// Closed model: `vus` users, each running one journey after another
    /// with a think time between them, until `duration` ends or each has
    /// run `iterations`.
    ConstantVus {
        vus: u32,
        duration: Duration,
        think_time: ThinkTime,
        /// Per user; `None` runs until the duration ends.
        iterations: Option<u64>,
    },
}

impl Model {
    pub fn kind(&self) -> &'static str {
        match self {
            Model::ConstantArrivalRate { .. } => "constant-arrival-rate",
            Model::RampingArrivalRate { .. } => "ramping-arrival-rate",
            Model::ConstantVus { .. } => "constant-vus",
        }
    }

    pub fn duration(&self) -> Duration {
        match self {
            Model::ConstantArrivalRate { duration, .. } | Model::ConstantVus { duration, .. } => {
                *duration
            }
            Model::RampingArrivalRate { stages, .. } => stages.iter().map(|s| s.duration).sum(),
        }
    }

    /// The arrival schedule of an open model.
    pub(crate) fn schedule(&self) -> Option<ArrivalSchedule> {
        match self {
            Model::ConstantArrivalRate { rate, duration, .. } => {
                Some(ArrivalSchedule::constant(*rate, *duration))
            }
            Model::RampingArrivalRate {
                start_rate, stages, ..
            } => Some(ArrivalSchedule::ramping(*start_rate, stages)),
            Model::ConstantVus { .. } => None,
        }
    }

    pub fn pool(&self) -> Option<&Pool> {
        match self {
            Model::ConstantArrivalRate { pool, .. } | Model::RampingArrivalRate { pool, .. } => {
                Some(pool)
            }
            Model::ConstantVus { .. } => None,
        }
    }
}

/// How many journeys an open-model executor may have running, and what
/// happens to arrivals beyond that (k6's `maxVUs`, plus a backlog).
///
/// An arrival that finds the pool full waits in the backlog and starts
/// late; the lateness counts in its corrected latency, which is how a
/// stalled system shows in the results instead of silently slowing the
/// load down (coordinated omission). An arrival that would start more
/// than `max_lateness` behind schedule, or that finds the backlog full, is
/// dropped and counted: the shortfall is reported, never hidden.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub max_in_flight: usize,
    pub max_lateness: Duration,
    pub max_backlog: usize,
}

impl Pool {
    /// An arrival started more than this behind schedule counts as late.
    pub const LATE: Duration = Duration::from_millis(10);

    /// One second: long enough to ride out a GC pause or a replica
    /// restart with every arrival still started (so the stall shows in the
    /// corrected latency), short enough that a system which has stopped
    /// keeping up is reported as dropping load within a second, rather than
    /// building a backlog that bursts onto it minutes later.
    pub const DEFAULT_MAX_LATENESS: Duration = Duration::from_secs(1);

    /// Bounds the backlog's memory (16 bytes an arrival) whatever the
    /// rate; at 100,000/s a second of lateness still fits.
    pub const DEFAULT_MAX_BACKLOG: usize = 100_000;

    pub fn new(max_in_flight: usize) -> Self {
        Self {
            max_in_flight,
            max_lateness: Self::DEFAULT_MAX_LATENESS,
            max_backlog: Self::DEFAULT_MAX_BACKLOG,
        }
    }
}

/// The pause between a closed-model user's journeys, uniform in
/// `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThinkTime {
    pub min: Duration,
    pub max: Duration,
}

/// Why a plan cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("the plan has no executors")]
    NoExecutors,
    #[error("two executors are called {0:?}; executor names must be unique")]
    DuplicateExecutor(String),
    #[error("executor {executor:?}: {problem}")]
    Executor { executor: String, problem: String },
}

impl Plan {
    /// When the last executor ends, from the start of the run.
    pub fn duration(&self) -> Duration {
        self.executors
            .iter()
            .map(|e| e.start + e.model.duration())
            .max()
            .unwrap_or_default()
    }

    /// Checks everything the engine relies on.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.executors.is_empty() {
            return Err(PlanError::NoExecutors);
        }
        for (i, executor) in self.executors.iter().enumerate() {
            if self.executors[..i].iter().any(|e| e.name == executor.name) {
                return Err(PlanError::DuplicateExecutor(executor.name.clone()));
            }
            executor.validate().map_err(|problem| PlanError::Executor {
                executor: executor.name.clone(),
                problem,
            })?;
        }
        Ok(())
    }
}

impl ExecutorPlan {
    fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("the name is empty".into());
        }
        if self.journeys.is_empty() {
            return Err("no journeys to run".into());
        }
        if self.journeys.iter().all(|j| j.weight == 0) {
            return Err("every journey has weight 0".into());
        }
        let rate_ok = |what: &str, r: f64| {
            if r.is_finite() && r >= 0.0 {
                Ok(())
            } else {
                Err(format!("{what} must be a rate ≥ 0 per second, not {r}"))
            }
        };
        match &self.model {
            Model::ConstantArrivalRate { rate, pool, .. } => {
                rate_ok("rate", *rate)?;
                pool.validate()?;
            }
            Model::RampingArrivalRate {
                start_rate,
                stages,
                pool,
            } => {
                rate_ok("start_rate", *start_rate)?;
                if stages.is_empty() {
                    return Err("a ramping arrival rate needs at least one stage".into());
                }
                for (i, stage) in stages.iter().enumerate() {
                    rate_ok(&format!("stage {} target", i + 1), stage.target)?;
                }
                pool.validate()?;
            }
            Model::ConstantVus {
                vus, think_time, ..
            } => {
                if *vus == 0 {
                    return Err("vus must be at least 1".into());
                }
                if think_time.min > think_time.max {
                    return Err(format!(
                        "think time min ({:?}) is above its max ({:?})",
                        think_time.min, think_time.max
                    ));
                }
            }
        }
        if self.model.duration().is_zero() {
            return Err("the duration is zero".into());
        }
        Ok(())
    }
}

impl Pool {
    fn validate(&self) -> Result<(), String> {
        if self.max_in_flight == 0 {
            return Err("max_in_flight must be at least 1".into());
        }
        Ok(())
    }
}

impl fmt::Debug for ExecutorPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorPlan")
            .field("name", &self.name)
            .field("start", &self.start)
            .field("model", &self.model)
            .field("journeys", &self.journeys)
            .finish()
    }
}

impl fmt::Debug for WeightedJourney {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeightedJourney")
            .field("name", &self.name)
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("executors", &self.executors)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::{Iteration, JourneyFuture};

    struct Nothing;
    impl Journey for Nothing {
        fn run<'a>(&'a self, _it: &'a mut Iteration) -> JourneyFuture<'a> {
            Box::pin(async {})
        }
    }

    fn executor(name: &str, model: Model) -> ExecutorPlan {
        ExecutorPlan {
            name: name.into(),
            start: Duration::from_secs(1),
            model,
            journeys: vec![WeightedJourney {
                name: "browse",
                weight: 1,
                journey: Arc::new(Nothing),
            }],
        }
    }

    fn constant(rate: f64) -> Model {
        Model::ConstantArrivalRate {
            rate,
            duration: Duration::from_secs(10),
            pool: Pool::new(10),
        }
    }

    #[test]
    fn a_sound_plan_passes_and_knows_its_duration() {
        let plan = Plan {
            executors: vec![
                executor("a", constant(5.0)),
                executor(
                    "b",
                    Model::RampingArrivalRate {
                        start_rate: 0.0,
                        stages: vec![Stage {
                            duration: Duration::from_secs(20),
                            target: 5.0,
                        }],
                        pool: Pool::new(1),
                    },
                ),
            ],
        };
        plan.validate().unwrap();
        assert_eq!(plan.duration(), Duration::from_secs(21));
    }

    #[test]
    fn bad_plans_are_explained() {
        let err = |plan: Plan| plan.validate().unwrap_err().to_string();
        assert_eq!(err(Plan::default()), "the plan has no executors");
        assert!(
            err(Plan {
                executors: vec![executor("a", constant(1.0)), executor("a", constant(1.0))]
            })
            .contains("unique")
        );
        assert_eq!(
            err(Plan {
                executors: vec![executor("a", constant(f64::NAN))]
            }),
            "executor \"a\": rate must be a rate ≥ 0 per second, not NaN"
        );
        let mut no_pool = executor("a", constant(1.0));
        if let Model::ConstantArrivalRate { pool, .. } = &mut no_pool.model {
            pool.max_in_flight = 0;
        }
        assert!(
            err(Plan {
                executors: vec![no_pool]
            })
            .contains("max_in_flight")
        );
        let mut weightless = executor("a", constant(1.0));
        weightless.journeys[0].weight = 0;
        assert!(
            err(Plan {
                executors: vec![weightless]
            })
            .contains("weight 0")
        );
        let vus = executor(
            "v",
            Model::ConstantVus {
                vus: 1,
                duration: Duration::from_secs(1),
                think_time: ThinkTime {
                    min: Duration::from_secs(2),
                    max: Duration::from_secs(1),
                },
                iterations: None,
            },
        );
        assert!(
            err(Plan {
                executors: vec![vus]
            })
            .contains("think time")
        );
        let ramp = executor(
            "r",
            Model::RampingArrivalRate {
                start_rate: 1.0,
                stages: vec![],
                pool: Pool::new(1),
            },
        );
        assert!(
            err(Plan {
                executors: vec![ramp]
            })
            .contains("at least one stage")
        );
    }
}
