//! End-to-end tests of modelgate: the HTTP API on a real server bound to a loopback port, and the CLI as
//! the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod architecture;
mod audit;
mod browser;
mod cards;
mod cli;
mod evaluation;
mod hardening;
mod jobs;
mod limits;
mod mlflow;
mod monitoring;
mod newcomer;
mod pages;
mod promotion;
mod runtime;
mod scanning;
mod support;
mod trust;
mod ui;
mod webhooks;
