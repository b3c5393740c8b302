//! The store's contract suite: every test runs against SQLite, and against PostgreSQL when
//! `MODELGATE_TEST_POSTGRES_URL` is set; each test gets a database (SQLite) or schema (PostgreSQL) of its own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod artifacts;
mod contract;
mod credentials;
mod evaluations;
mod promotion;
mod support;
mod tamper;
