//! What links a running job to its database: the engine and node that run it and the claim of
//! this run, which steps ([`crate::JobContext::step`]) and the job's own transaction
//! ([`crate::JobTx`]) need to write under the guard of the batched acks. The runtime (and the
//! testing helpers that run through a database) set it; a context without one runs every step
//! unrecorded and cannot open a transaction.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::Engine;

/// See the module doc. One per run, shared by the run's context and its transaction.
pub(crate) struct RunLink {
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) node: String,
    /// The claim stamp of this run ([`crate::engine::FetchedJob::claim`]).
    pub(crate) claim: i64,
    /// See [`crate::RuntimeBuilder::max_result_bytes`]: results and step values are held to it.
    pub(crate) max_bytes: usize,
    /// Set once the job's transaction committed its completion: the runtime then writes nothing.
    committed: AtomicBool,
    /// Set while the job's transaction is open.
    tx_open: AtomicBool,
}

impl fmt::Debug for RunLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunLink")
            .field("node", &self.node)
            .field("claim", &self.claim)
            .finish_non_exhaustive()
    }
}

impl RunLink {
    pub(crate) fn new(engine: Arc<dyn Engine>, node: String, claim: i64, max_bytes: usize) -> Arc<Self> {
        Arc::new(RunLink {
            engine,
            node,
            claim,
            max_bytes,
            committed: AtomicBool::new(false),
            tx_open: AtomicBool::new(false),
        })
    }

    /// Whether the job's transaction committed its completion.
    pub(crate) fn committed(&self) -> bool {
        self.committed.load(Ordering::Acquire)
    }

    pub(crate) fn set_committed(&self) {
        self.committed.store(true, Ordering::Release);
    }

    /// Whether the job's transaction is open now.
    pub(crate) fn tx_open(&self) -> bool {
        self.tx_open.load(Ordering::Acquire)
    }

    pub(crate) fn set_tx_open(&self, open: bool) {
        self.tx_open.store(open, Ordering::Release);
    }
}
