//! The integration suite: one binary, the real app over HTTP, both stores, the simulator over HTTP.

mod support;
#[macro_use]
mod helpers;

mod access_pages;
mod architecture;
mod attention;
mod audit;
mod auth;
mod bad_input;
mod browser;
mod card_corpus;
mod card_data;
mod cli;
mod console;
mod console_pages;
mod console_sessions;
mod data_protection;
mod data_protection_pages;
mod deploy;
mod deploy_roles;
mod exits;
mod exposure;
mod hardening;
mod hardening_storage;
mod idempotency;
mod income;
mod income_rules;
mod ledger;
mod notifications;
mod openapi;
mod operations;
mod payments;
mod poller;
mod proof;
mod provider_failures;
mod providers;
mod reconciliation;
mod reconciliation_pages;
mod refund_truth;
mod refunds;
mod replicas;
mod simulator;
mod simulator_contract;
mod store_conformance;
mod webhooks;
