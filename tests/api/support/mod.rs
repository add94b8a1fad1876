//! Test support: PostgreSQL discovery and log capture.

pub mod card_corpus;
pub mod crm;
pub mod disguises;
pub mod logs;
pub mod openapi_contract;
pub mod postgres;
pub mod process;
