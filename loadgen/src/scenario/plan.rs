//! A scenario as the engine runs it: its executors as an engine
//! [`Plan`], each journey named in the file bound to the prepared data.

use std::sync::Arc;

use load_engine::{ExecutorPlan, Model, Plan, Pool, Stage, ThinkTime, WeightedJourney};

use super::{ExecutorKind, Scenario};
use crate::journeys::{self, World};

impl Scenario {
    /// The engine's plan for this scenario, its journeys bound to
    /// `world` (the prepared data).
    pub(crate) fn plan(&self, world: &Arc<World>) -> Plan {
        let executors = self
            .executors
            .iter()
            .map(|e| {
                let model = match &e.kind {
                    ExecutorKind::ConstantArrivalRate { rate } => Model::ConstantArrivalRate {
                        rate: *rate,
                        duration: e.duration,
                        pool: Pool::new(e.max_in_flight),
                    },
                    ExecutorKind::RampingArrivalRate { start_rate, stages } => {
                        Model::RampingArrivalRate {
                            start_rate: *start_rate,
                            stages: stages
                                .iter()
                                .map(|s| Stage {
                                    duration: s.duration,
                                    target: s.target,
                                })
                                .collect(),
                            pool: Pool::new(e.max_in_flight),
                        }
                    }
                    ExecutorKind::ConstantVus { vus, think_time } => Model::ConstantVus {
                        vus: u32::try_from(*vus).unwrap_or(u32::MAX),
                        duration: e.duration,
                        think_time: ThinkTime {
                            min: think_time.0,
                            max: think_time.1,
                        },
                        iterations: None,
                    },
                };
                ExecutorPlan {
                    name: e.name.clone(),
                    start: e.start,
                    model,
                    journeys: e
                        .journeys
                        .iter()
                        .filter_map(|(name, weight)| {
                            Some(WeightedJourney {
                                name,
                                weight: *weight,
                                journey: journeys::named(world, name)?,
                            })
                        })
                        .collect(),
                }
            })
            .collect();
        Plan { executors }
    }
}
