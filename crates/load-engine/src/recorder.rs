//! Where finished journeys go until the collector merges them.
//!
//! A journey's task only pushes its [`Completion`] (the records it already
//! owns, moved, not copied) onto a shard picked by the worker thread it
//! runs on, so threads almost never meet on a lock and nothing on the hot
//! path touches a histogram. The collector swaps each shard's buffer out a
//! few times a second and does the histogram work in one place.

use std::{
    cell::Cell,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
};

use crate::stats::Completion;

/// More shards than a runtime has worker threads, so threads rarely
/// share one; threads beyond this wrap around.
const SHARDS: usize = 16;

/// A buffer per shard, each on its own cache lines so neighbouring
/// shards' locks do not bounce one line between cores.
#[repr(align(128))]
struct Shard(Mutex<Vec<Completion>>);

pub(crate) struct Recorder {
    shards: Box<[Shard]>,
}

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard, assigned on first use.
    static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
}

fn this_threads_shard() -> usize {
    SHARD.with(|s| match s.get() {
        Some(i) => i,
        None => {
            let i = NEXT_THREAD.fetch_add(1, Ordering::Relaxed) % SHARDS;
            s.set(Some(i));
            i
        }
    })
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard(Mutex::new(Vec::new()))).collect(),
        }
    }

    pub(crate) fn push(&self, completion: Completion) {
        let shard = &self.shards[this_threads_shard()].0;
        // A panic elsewhere while holding a shard cannot leave a Vec half
        // pushed; keep recording rather than lose the run.
        shard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(completion);
    }

    /// Moves everything recorded so far into `into` (which should be
    /// empty); the shards keep `into`'s old capacity for next time.
    pub(crate) fn drain(&self, into: &mut Vec<Completion>, spare: &mut Vec<Completion>) {
        for shard in &self.shards {
            {
                let mut buffer = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
                if buffer.is_empty() {
                    continue;
                }
                std::mem::swap(&mut *buffer, spare);
            }
            into.append(spare);
        }
    }
}
