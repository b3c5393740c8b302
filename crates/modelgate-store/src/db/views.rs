//! In-memory views for the hottest reads — the deployment gate's stage occupants, the principal behind
//! a token, and the review queue every inbox reads — kept only when this process is the database's single writer (SQLite). Every write
//! transaction bumps a generation and clears them after it commits, under the same lock that readers take
//! to fill them, so an answer is never stale once a commit has returned. With PostgreSQL (several
//! replicas) there are no such views: a replica keeps only the review queue, tagged with the database's
//! write generation ([`GenerationTagged`]), and asks the database for the generation on every read.

use modelgate_core::promotion::StageOccupant;
use modelgate_core::{Principal, Stage, TokenRecord};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct Cached {
    generation: u64,
    occupants: HashMap<(String, Stage), Vec<StageOccupant>>,
    principals: HashMap<String, (TokenRecord, Principal)>,
    /// The open requests as reviewers' inboxes read them (`Store::review_queue`).
    review_queue: Option<std::sync::Arc<Vec<super::promotion::QueuedRequest>>>,
}

#[derive(Default)]
pub(crate) struct Views(Mutex<Cached>);

impl Views {
    /// The generation to quote when filling a view after a read.
    pub(crate) fn generation(&self) -> u64 {
        self.0
            .lock()
            .map(|cached| cached.generation)
            .unwrap_or(u64::MAX)
    }

    /// Called after every commit.
    pub(crate) fn invalidate(&self) {
        if let Ok(mut cached) = self.0.lock() {
            cached.generation = cached.generation.wrapping_add(1);
            cached.occupants.clear();
            cached.principals.clear();
            cached.review_queue = None;
        }
    }

    pub(crate) fn review_queue(
        &self,
    ) -> Option<std::sync::Arc<Vec<super::promotion::QueuedRequest>>> {
        self.0.lock().ok()?.review_queue.clone()
    }

    pub(crate) fn remember_review_queue(
        &self,
        generation: u64,
        queue: &std::sync::Arc<Vec<super::promotion::QueuedRequest>>,
    ) {
        if let Ok(mut cached) = self.0.lock()
            && cached.generation == generation
        {
            cached.review_queue = Some(queue.clone());
        }
    }

    pub(crate) fn occupants(&self, model: &str, stage: Stage) -> Option<Vec<StageOccupant>> {
        let cached = self.0.lock().ok()?;
        cached.occupants.get(&(model.to_owned(), stage)).cloned()
    }

    pub(crate) fn remember_occupants(
        &self,
        generation: u64,
        model: &str,
        stage: Stage,
        occupants: &[StageOccupant],
    ) {
        if let Ok(mut cached) = self.0.lock()
            && cached.generation == generation
        {
            cached
                .occupants
                .insert((model.to_owned(), stage), occupants.to_vec());
        }
    }

    pub(crate) fn principal(&self, secret_hash: &str) -> Option<(TokenRecord, Principal)> {
        let cached = self.0.lock().ok()?;
        cached.principals.get(secret_hash).cloned()
    }

    pub(crate) fn remember_principal(
        &self,
        generation: u64,
        secret_hash: &str,
        found: &(TokenRecord, Principal),
    ) {
        if let Ok(mut cached) = self.0.lock()
            && cached.generation == generation
        {
            cached
                .principals
                .insert(secret_hash.to_owned(), found.clone());
        }
    }
}

/// The review queue as a PostgreSQL replica last read it, with the write generation it read first. Reading
/// the generation before the queue means a kept queue is never older than its tag: a write committing in
/// between only makes the next read go to the database again.
#[derive(Default)]
pub(crate) struct GenerationTagged(
    Mutex<Option<(i64, std::sync::Arc<Vec<super::promotion::QueuedRequest>>)>>,
);

impl GenerationTagged {
    pub(crate) fn review_queue(
        &self,
        generation: i64,
    ) -> Option<std::sync::Arc<Vec<super::promotion::QueuedRequest>>> {
        match &*self.0.lock().ok()? {
            Some((kept, queue)) if *kept == generation => Some(queue.clone()),
            _ => None,
        }
    }

    pub(crate) fn remember_review_queue(
        &self,
        generation: i64,
        queue: &std::sync::Arc<Vec<super::promotion::QueuedRequest>>,
    ) {
        if let Ok(mut kept) = self.0.lock() {
            *kept = Some((generation, queue.clone()));
        }
    }
}
