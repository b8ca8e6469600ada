//! The planner at a million users: run with
//! `cargo test -p scimsync-plan --release -- --ignored --nocapture scale`.

use crate::{PlanInput, Policy};
use scimsync_model::{
    AttrValue, Attrs, DesiredUser, Link, OpKind, ScimId, SourceId, TargetUser, TargetView,
    fingerprint, paths,
};
use std::time::Instant;

const USERS: usize = 1_000_000;
/// Every hundredth user changed department since the last cycle.
const CHANGED_EVERY: usize = 100;

fn attrs(i: usize, department: &str) -> Attrs {
    let mut attrs = Attrs::new();
    attrs.insert(
        paths::DISPLAY_NAME.into(),
        AttrValue::text(format!("User {i}")),
    );
    attrs.insert(paths::DEPARTMENT.into(), AttrValue::text(department));
    attrs.insert(paths::TITLE.into(), AttrValue::text("Engineer"));
    attrs.insert(paths::ROLE.into(), AttrValue::text(paths::USER_ROLE));
    attrs
}

#[test]
#[ignore = "a million users; run in release"]
fn scale_a_million_users_incrementally_and_fully() {
    let build = Instant::now();
    let mut desired = Vec::with_capacity(USERS);
    let mut links = Vec::with_capacity(USERS);
    let mut users = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let user_name = format!("user{i}@example.com");
        let pushed = attrs(i, "Eng");
        let mut want = if i % CHANGED_EVERY == 0 {
            attrs(i, "Ops")
        } else {
            pushed.clone()
        };
        if i > 0 {
            // Everyone but the first has a manager, resolved through the links.
            want.insert(
                paths::MANAGER.into(),
                AttrValue::Ref {
                    user: SourceId::new(format!("s{}", i / 10)),
                },
            );
        }
        let mut pushed = pushed;
        if i > 0 {
            pushed.insert(
                paths::MANAGER.into(),
                AttrValue::text(format!("t{}", i / 10)),
            );
        }
        desired.push(DesiredUser {
            source_id: SourceId::new(format!("s{i}")),
            user_name: user_name.clone(),
            active: true,
            attrs: want,
        });
        links.push(Link {
            source_id: SourceId::new(format!("s{i}")),
            target_id: ScimId::new(format!("t{i}")),
            hash: fingerprint(&user_name, true, &pushed),
            user_name: user_name.clone(),
            active: true,
            attrs: pushed.clone(),
        });
        users.push(TargetUser {
            id: ScimId::new(format!("t{i}")),
            user_name,
            active: true,
            attrs: pushed,
        });
    }
    eprintln!("built {USERS} users in {:?}", build.elapsed());

    for complete in [false, true] {
        let target = TargetView {
            users: users.clone(),
            complete,
        };
        let started = Instant::now();
        let output = crate::plan(
            &PlanInput {
                desired: &desired,
                out_of_scope: &[],
                held: &[],
                links: &links,
                target: &target,
                guests: &[],
                grace_expired: &[],
                unchanged: None,
            },
            &Policy::default(),
        );
        let took = started.elapsed();
        eprintln!(
            "complete = {complete}: planned in {took:?}, {:?}",
            output.plan.counts()
        );
        assert_eq!(output.plan.counts().update, USERS / CHANGED_EVERY);
        assert!(output.plan.ops.iter().all(|op| op.kind() == OpKind::Update));
    }
}
