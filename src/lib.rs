//! Counterfoil: hosted card payments for UK councils, keeping tokens and references only.
//!
//! Dependencies point one way: `http` → `service` → {`providers`, `store`}, and all may use
//! `domain`. `startup` alone chooses implementations; `simulator` is a stand-in provider server.

pub mod background;
pub mod config;
pub mod console;
pub mod domain;
pub mod edge;
pub mod http;
pub mod metrics;
pub mod outbound;
pub mod providers;
pub mod service;
pub mod simulator;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod views;
