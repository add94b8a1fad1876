//! The `_control` API tests use to steer the simulator's events and their delivery.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::*;

pub(super) async fn set_control(
    sim: web::Data<Simulator>,
    control: web::Json<EventControl>,
) -> HttpResponse {
    let control = control.into_inner();
    sim.courier.control(control.mode.clone(), Duration::ZERO);
    sim.lock().control = control;
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Release {
    #[serde(default)]
    reverse: bool,
    #[serde(default)]
    duplicate: bool,
}

pub(super) async fn release(
    sim: web::Data<Simulator>,
    release: web::Json<Release>,
) -> HttpResponse {
    sim.courier.release(release.reverse, release.duplicate);
    HttpResponse::NoContent().finish()
}

pub(super) async fn list_deliveries(sim: web::Data<Simulator>) -> HttpResponse {
    HttpResponse::Ok().json(sim.courier.report())
}
