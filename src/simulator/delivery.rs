//! How the simulators deliver their signed messages to Counterfoil: as a test asks (deliver,
//! drop, duplicate, or hold and then release in the order made or reversed), each retried on a
//! compressed schedule until a 2xx, as the real providers do, and signed afresh per attempt.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

/// How the simulator delivers messages, as a test asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookMode {
    #[default]
    Deliver,
    /// Never send (a lost webhook).
    Drop,
    /// Send every message twice.
    Duplicate,
    /// Queue messages until released, which may reverse their order.
    Hold,
}

/// Signs a body for one attempt: the header's name and value.
pub type Signer = Arc<dyn Fn(&[u8]) -> (&'static str, String) + Send + Sync>;

/// One message to deliver.
#[derive(Clone)]
pub struct Message {
    pub url: String,
    pub id: String,
    pub event_type: String,
    pub body: String,
    pub sign: Signer,
}

/// What happened to a message, for tests.
#[derive(Debug, Clone, serde::Serialize)]
struct Record {
    message_id: String,
    event_type: String,
    attempts: u32,
    last_status: Option<u16>,
}

#[derive(Default)]
struct State {
    mode: WebhookMode,
    delay: Duration,
    held: Vec<Message>,
    records: Vec<Record>,
}

#[derive(Clone)]
pub struct Courier {
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
}

impl Default for Courier {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
        }
    }
}

impl Courier {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on, deliver as `mode`, each message after `delay`.
    pub fn control(&self, mode: WebhookMode, delay: Duration) {
        let mut state = self.lock();
        state.mode = mode;
        state.delay = delay;
    }

    /// Sends (or drops, duplicates, holds) messages as the test asked.
    pub fn dispatch(&self, messages: Vec<Message>) {
        let (mode, delay) = {
            let mut state = self.lock();
            if state.mode == WebhookMode::Hold {
                state.held.extend(messages);
                return;
            }
            (state.mode.clone(), state.delay)
        };
        let copies = match mode {
            WebhookMode::Drop => 0,
            WebhookMode::Duplicate => 2,
            _ => 1,
        };
        for message in messages {
            for _ in 0..copies {
                self.send(message.clone(), delay);
            }
        }
    }

    /// Sends every held message, in the order made or reversed, one after another (so they
    /// arrive in that order), each twice if asked; then delivers normally. How many were held.
    pub fn release(&self, reverse: bool, duplicate: bool) -> usize {
        let mut held = {
            let mut state = self.lock();
            state.mode = WebhookMode::Deliver;
            std::mem::take(&mut state.held)
        };
        if reverse {
            held.reverse();
        }
        let count = held.len();
        let copies = if duplicate { 2 } else { 1 };
        for (i, message) in held.into_iter().enumerate() {
            for _ in 0..copies {
                self.send(message.clone(), Duration::from_millis(30 * i as u64));
            }
        }
        count
    }

    /// Every message sent so far, with its attempts and last answer, and how many are held.
    pub fn report(&self) -> Value {
        let state = self.lock();
        json!({ "deliveries": state.records, "held": state.held.len() })
    }

    fn send(&self, message: Message, delay: Duration) {
        let courier = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let index = {
                let mut state = courier.lock();
                state.records.push(Record {
                    message_id: message.id.clone(),
                    event_type: message.event_type.clone(),
                    attempts: 0,
                    last_status: None,
                });
                state.records.len() - 1
            };
            for attempt in 0..6u32 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt))).await;
                }
                let (header, signature) = (message.sign)(message.body.as_bytes());
                let status = courier
                    .http
                    .post(&message.url)
                    .header("Content-Type", "application/json")
                    .header(header, signature)
                    .body(message.body.clone())
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .ok();
                {
                    let mut state = courier.lock();
                    state.records[index].attempts = attempt + 1;
                    state.records[index].last_status = status;
                }
                if status.is_some_and(|s| (200..300).contains(&s)) {
                    return;
                }
            }
        });
    }
}
