//! Built-in stand-ins for payment providers, served over real HTTP inside Counterfoil for
//! development and tests. Never enabled in production.

pub mod delivery;
pub mod govuk_pay;
pub mod stripe;
