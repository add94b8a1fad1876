//! A stand-in CRM: a real HTTP server that records every notification and answers as a test
//! asks (2xx, errors, Retry-After, slowness).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// How the CRM answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    RetryAfter(u16, u64),
    /// Answer 200, but only after this long.
    Slow(Duration),
}

/// One notification as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: Vec<u8>,
    pub answered: u16,
}

#[derive(Default)]
struct State {
    plan: VecDeque<Answer>,
    received: Vec<Received>,
    delay: Duration,
}

#[derive(Clone)]
pub struct Crm {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Crm {
    /// Starts the receiver on a random loopback port.
    pub async fn start() -> Self {
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .default_service(web::to(receive))
        })
        .workers(2)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let url = format!("http://{}/counterfoil-events", server.addrs()[0]);
        tokio::spawn(server.run());
        Self { url, state }
    }

    /// The next answers, in order; after them, 200.
    pub fn plan(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().plan.extend(answers);
    }

    /// Every answer takes at least this long (a busy CRM).
    pub fn delay_each(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

async fn receive(
    state: web::Data<Arc<Mutex<State>>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (answer, delay) = {
        let mut state = state.lock().unwrap();
        (state.plan.pop_front(), state.delay)
    };
    let answered = match &answer {
        Some(Answer::Status(code)) | Some(Answer::RetryAfter(code, _)) => *code,
        Some(Answer::Slow(_)) | None => 200,
    };
    // Recorded on arrival: a request the sender gives up on has still arrived.
    state.lock().unwrap().received.push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
        signature: header("webhook-signature"),
        body: body.to_vec(),
        answered,
    });
    tokio::time::sleep(delay).await;
    if let Some(Answer::Slow(wait)) = &answer {
        tokio::time::sleep(*wait).await;
    }
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap());
    if let Some(Answer::RetryAfter(_, seconds)) = answer {
        response.insert_header(("Retry-After", seconds.to_string()));
    }
    response.finish()
}
