//! Executor against real HTTP: the Miro-faithful emulator in-process on 127.0.0.1:0, and a
//! scripted mock server for answers the emulator cannot be made to give.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod answers;
mod emulator;
mod mock;
mod rest;

use scimsync_executor::{
    ClientConfig, ExecContext, OpOutcome, Recorder, RetryPolicy, ScimClient, Tuning,
};
use scimsync_model::{Attrs, Event, InitiatedBy, Link, Op, RunId, SourceId};
use scimsync_scim::{Budgets, Profile};
use secrecy::SecretString;
use std::time::Duration;

pub const TOKEN: &str = "tok-3f9a1c-very-secret";

/// Every Recorder call, in order.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Call {
    Before(usize, String),
    Uncertain(scimsync_model::Uncertain),
    After(usize, OpOutcome),
    Link(Link),
    Unlink(SourceId),
    Event(Event),
    /// `attribute_refused`: the path the target refuses for everyone.
    Refused(String),
}

#[derive(Default, Debug)]
pub struct Rec {
    pub calls: Vec<Call>,
}

impl Recorder for Rec {
    fn before_write(&mut self, op_index: usize, _op: &Op, request: &str) {
        self.calls.push(Call::Before(op_index, request.to_owned()));
    }
    fn uncertain(&mut self, mark: &scimsync_model::Uncertain) {
        self.calls.push(Call::Uncertain(mark.clone()));
    }
    fn after_write(&mut self, op_index: usize, outcome: &OpOutcome) {
        self.calls.push(Call::After(op_index, outcome.clone()));
    }
    fn link(&mut self, link: Link) {
        self.calls.push(Call::Link(link));
    }
    fn unlink(&mut self, source_id: &SourceId) {
        self.calls.push(Call::Unlink(source_id.clone()));
    }
    fn event(&mut self, event: Event) {
        self.calls.push(Call::Event(event));
    }
    fn attribute_refused(&mut self, dropped: &scimsync_executor::Dropped) {
        self.calls.push(Call::Refused(dropped.path.clone()));
    }
}

impl Rec {
    pub fn events(&self) -> Vec<&Event> {
        self.calls
            .iter()
            .filter_map(|c| {
                if let Call::Event(e) = c {
                    Some(e)
                } else {
                    None
                }
            })
            .collect()
    }
    pub fn links(&self) -> Vec<&Link> {
        self.calls
            .iter()
            .filter_map(|c| if let Call::Link(l) = c { Some(l) } else { None })
            .collect()
    }
    pub fn uncertain(&self) -> Vec<&scimsync_model::Uncertain> {
        self.calls
            .iter()
            .filter_map(|c| match c {
                Call::Uncertain(u) => Some(u),
                _ => None,
            })
            .collect()
    }
    pub fn outcome(&self, index: usize) -> Option<&OpOutcome> {
        self.calls.iter().find_map(|c| match c {
            Call::After(i, o) if *i == index => Some(o),
            _ => None,
        })
    }
    pub fn event_for(&self, source: &str) -> Option<&Event> {
        self.events().into_iter().find(|e| {
            e.resource
                .as_ref()
                .and_then(|r| r.source_id.as_ref())
                .map(SourceId::as_str)
                == Some(source)
        })
    }
}

/// Fast retries so fault tests finish quickly; seeded jitter so they replay.
pub fn tuning() -> Tuning {
    Tuning {
        retry: RetryPolicy {
            max_attempts: 10,
            max_elapsed: Duration::from_secs(30),
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            jitter_seed: Some(7),
        },
        ..Tuning::default()
    }
}

pub fn client(base_url: &str, token: &str, profile: Profile, budgets: Budgets) -> ScimClient {
    let cfg = ClientConfig {
        base_url: base_url.to_owned(),
        profile,
        timeout: Duration::from_secs(10),
        user_agent: "scimsync-test".into(),
        max_response_bytes: scimsync_executor::DEFAULT_MAX_RESPONSE_BYTES,
    };
    ScimClient::with_tuning(cfg, SecretString::from(token.to_owned()), budgets, tuning()).unwrap()
}

pub fn ctx() -> ExecContext {
    ExecContext::new(RunId(1), InitiatedBy::Manual, "test")
}

pub fn create(id: &str, user_name: &str) -> Op {
    Op::Create {
        source_id: SourceId::new(id),
        user_name: user_name.to_owned(),
        attrs: Attrs::new(),
    }
}
