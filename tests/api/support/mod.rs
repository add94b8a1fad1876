//! Test support: PostgreSQL discovery and log capture.

pub mod crm;
pub mod logs;
pub mod postgres;
pub mod process;
