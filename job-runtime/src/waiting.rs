//! Awaiting a job: `db.wait::<J>(id, timeout)` returns the job's typed result once it completed,
//! or its final error, or a timeout that leaves it running.
//!
//! Every `Db` of a process shares nothing here: each has one hub, started by its first wait,
//! that listens for finished jobs once (on PostgreSQL one LISTEN connection on the
//! `<schema>_finished` channel, fed by a trigger on awaited rows; on SQLite the engine's
//! in-process announcements) and wakes the waiters of each announced id. Thousands of waiters
//! cost that one listener and one `Notify` each, not a connection or a poll each.
//!
//! A waiter marks its job awaited, then reads its state: a job that finishes after the mark is
//! announced, one that finished before is what the read finds. As a safety net for
//! announcements that cannot come (a SQLite job finished by another process, a PostgreSQL
//! listener that was reconnecting), each waiter also reads its job's state again every
//! [`RECHECK`].

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::job::Job;
use crate::types::JobState;

/// How often a waiter reads its job's state even without an announcement.
pub const RECHECK: Duration = Duration::from_secs(2);

/// The waiters of one `Db`, by job id, and the listener that wakes them.
pub(crate) struct Hub {
    waiting: Mutex<HashMap<i64, Vec<Weak<Notify>>>>,
    /// See [`Db::with_wait_recheck`].
    recheck: Duration,
    /// The running listener: its stop token (fired when the hub is dropped) and whether it
    /// listens yet. Started without awaiting anything, so a waiter dropped at any point cannot
    /// leave a listener behind.
    listening: std::sync::OnceLock<(CancellationToken, watch::Receiver<bool>)>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::with_recheck(RECHECK)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some((stop, _)) = self.listening.get() {
            stop.cancel();
        }
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("waiting", &self.waiting.lock().map(|w| w.len()).unwrap_or(0)).finish()
    }
}

impl Hub {
    fn with_recheck(recheck: Duration) -> Self {
        // A zero interval would spin.
        let recheck = recheck.max(Duration::from_millis(10));
        Hub { waiting: Mutex::default(), recheck, listening: std::sync::OnceLock::new() }
    }

    /// Starts the listener if it is not running, then waits until it listens, or until
    /// `deadline` (a listener that cannot start yet, the database away, holds no waiter: they
    /// read their job again every recheck meanwhile).
    async fn listen(self: &Arc<Self>, engine: &Arc<dyn Engine>, deadline: tokio::time::Instant) {
        let (_, ready) = self.listening.get_or_init(|| {
            let stop = CancellationToken::new();
            let (tx, rx) = mpsc::unbounded_channel();
            let (ready_tx, ready_rx) = oneshot::channel();
            let (flag_tx, flag_rx) = watch::channel(false);
            let listener = {
                let (engine, stop) = (engine.clone(), stop.clone());
                async move { engine.listen_finished(tx, ready_tx, stop).await }
            };
            tokio::spawn(listener);
            tokio::spawn(async move {
                if ready_rx.await.is_ok() {
                    let _ = flag_tx.send(true);
                }
            });
            tokio::spawn(dispatch(Arc::downgrade(self), rx, stop.clone()));
            (stop, flag_rx)
        });
        let mut ready = ready.clone();
        let bound = deadline.min(tokio::time::Instant::now() + self.recheck);
        let _ = tokio::time::timeout_at(bound, ready.wait_for(|listening| *listening)).await;
    }

    /// A wake-up for job `id`, kept until the returned registration is dropped.
    fn register(self: &Arc<Self>, id: i64) -> Registration {
        let notify = Arc::new(Notify::new());
        let mut waiting = self.waiting.lock().expect("waiters");
        let list = waiting.entry(id).or_default();
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&notify));
        Registration { hub: self.clone(), id, notify }
    }

    /// Wakes the waiters of `ids`, or every waiter when `ids` is empty; forgets gone ones.
    fn wake(&self, ids: &[i64]) {
        let mut waiting = self.waiting.lock().expect("waiters");
        let mut wake_list = |list: &mut Vec<Weak<Notify>>| {
            list.retain(|w| match w.upgrade() {
                Some(n) => {
                    n.notify_one();
                    true
                }
                None => false,
            });
        };
        if ids.is_empty() {
            waiting.values_mut().for_each(&mut wake_list);
        } else {
            for id in ids {
                if let Some(list) = waiting.get_mut(id) {
                    wake_list(list);
                }
            }
        }
        waiting.retain(|_, list| !list.is_empty());
    }
}

/// One waiter's wake-up; dropping it (the wait returned or was dropped) forgets it, so ids that
/// are never announced leave nothing behind.
struct Registration {
    hub: Arc<Hub>,
    id: i64,
    notify: Arc<Notify>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut waiting = self.hub.waiting.lock().expect("waiters");
        if let Some(list) = waiting.get_mut(&self.id) {
            list.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.notify)));
            if list.is_empty() {
                waiting.remove(&self.id);
            }
        }
    }
}

/// Forwards announcements to the hub's waiters until the hub is gone or `stop` fires.
async fn dispatch(hub: Weak<Hub>, mut rx: mpsc::UnboundedReceiver<Vec<i64>>, stop: CancellationToken) {
    loop {
        let ids = tokio::select! {
            _ = stop.cancelled() => return,
            ids = rx.recv() => match ids { Some(ids) => ids, None => return },
        };
        match hub.upgrade() {
            Some(hub) => hub.wake(&ids),
            None => return,
        }
    }
}

/// A job inserted by [`Db::enqueue`], to wait for: its id and its type.
pub struct JobHandle<J: Job> {
    db: Db,
    id: i64,
    _job: PhantomData<fn() -> J>,
}

impl<J: Job> Clone for JobHandle<J> {
    fn clone(&self) -> Self {
        JobHandle { db: self.db.clone(), id: self.id, _job: PhantomData }
    }
}

impl<J: Job> std::fmt::Debug for JobHandle<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle").field("job", &J::NAME).field("id", &self.id).finish()
    }
}

impl<J: Job> JobHandle<J> {
    /// The job's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Waits at most `timeout` for the job to finish (see [`Db::wait`]).
    pub async fn wait(&self, timeout: Duration) -> Result<Option<J::Output>> {
        self.db.wait::<J>(self.id, timeout).await
    }
}

impl Db {
    /// Inserts `job` and returns a handle to wait for it.
    ///
    /// ```
    /// # use jobsmith::prelude::*;
    /// #[jobsmith::job(queue = "wait-doc")]
    /// async fn double(n: i64) -> Result<i64, String> { Ok(2 * n) }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> jobsmith::Result<()> {
    /// let db = jobsmith::Db::connect("sqlite::memory:").await?;
    /// db.migrate().await?;
    /// let runtime = db.runtime().queue("wait-doc", 2).start().await?;
    /// let handle = db.enqueue(Double { n: 21 }).await?;
    /// assert_eq!(handle.wait(std::time::Duration::from_secs(30)).await?, Some(42));
    /// runtime.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub async fn enqueue<J: Job>(
        &self,
        job: impl Into<crate::insert::InsertBuilder<J>>,
    ) -> Result<JobHandle<J>> {
        let inserted = self.insert(job).await?;
        Ok(JobHandle { db: self.clone(), id: inserted.job.id, _job: PhantomData })
    }

    /// This database with waiters that read their job's state every `recheck` even without an
    /// announcement (default [`RECHECK`], 2 s): the safety net for announcements that cannot
    /// come, such as a SQLite job finished by another process. Its waiters have a listener of
    /// their own.
    pub fn with_wait_recheck(&self, recheck: Duration) -> Db {
        let mut db = self.clone();
        db.waiters = Arc::new(Hub::with_recheck(recheck));
        db
    }

    /// A handle to wait for job `id`, inserted elsewhere, as a `J`.
    pub fn handle<J: Job>(&self, id: i64) -> JobHandle<J> {
        JobHandle { db: self.clone(), id, _job: PhantomData }
    }

    /// Waits at most `timeout` for job `id` to finish. Completed: its recorded result, typed
    /// (`None` for a job that records none). Discarded or cancelled: [`Error::JobFailed`] with
    /// its last error. Still unfinished at the deadline: [`Error::WaitTimedOut`], and the job goes
    /// on. No such job (or pruned): [`Error::JobNotFound`].
    ///
    /// Woken by the engine's announcement of finished jobs, not by polling: works from a process
    /// that runs no runtime, and many waiters share one listener (see the module doc).
    pub async fn wait<J: Job>(&self, id: i64, timeout: Duration) -> Result<Option<J::Output>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let hub = self.waiters.clone();
        let registration = hub.register(id);
        hub.listen(self.engine(), deadline).await;
        let mut state = self.engine().watch(id).await?;
        loop {
            match state {
                None => return Err(Error::JobNotFound(id)),
                Some(JobState::Completed) => return self.result::<J>(id).await,
                Some(state @ (JobState::Discarded | JobState::Cancelled)) => {
                    let error = self
                        .engine()
                        .get_job(id)
                        .await?
                        .and_then(|j| j.errors.last().and_then(|e| e["error"].as_str().map(str::to_string)))
                        .unwrap_or_default();
                    return Err(Error::JobFailed { id, state, error });
                }
                Some(state) => {
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        return Err(Error::WaitTimedOut { id, state });
                    }
                    let nap = hub.recheck.min(deadline - now);
                    let _ = tokio::time::timeout(nap, registration.notify.notified()).await;
                }
            }
            state = self.engine().get_job(id).await?.map(|j| j.state);
        }
    }
}
