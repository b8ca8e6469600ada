//! The group reads a cycle needs, and nothing more: no request when nothing is synced or when
//! every synced group is linked (incremental), one list and a read per name match of an
//! unlinked group otherwise, every linked group read on a full cycle, and a team known to be
//! missing looked for again on full cycles only.

use super::World;
use crate::groups::{GroupSide, read};
use scimsync_emulator::{EmulatorConfig, Seed, SeedGroup, SeedUser};
use scimsync_model::{DesiredGroup, GroupLink, ScimId, SourceId};

struct Teams {
    world: World,
    config: crate::Config,
    client: std::sync::Arc<scimsync_executor::ScimClient>,
    eng: ScimId,
}

async fn teams() -> Teams {
    let seed = Seed {
        users: vec![
            SeedUser::new("ann@example.com"),
            SeedUser::new("bob@example.com"),
        ],
        groups: vec![
            SeedGroup {
                display_name: "Eng".into(),
                members: vec!["ann@example.com".into()],
            },
            SeedGroup {
                display_name: "Sales".into(),
                members: vec!["bob@example.com".into()],
            },
        ],
        teams: Vec::new(),
    };
    let world = World::with(EmulatorConfig {
        seed,
        ..EmulatorConfig::default()
    })
    .await;
    let config = world.config("", "");
    let client = crate::target::client(&config, config.token().unwrap()).unwrap();
    let eng = world
        .emu
        .emulator
        .groups()
        .into_iter()
        .find(|g| g.display_name == "Eng")
        .map(|g| ScimId::new(g.id))
        .unwrap();
    Teams {
        world,
        config,
        client,
        eng,
    }
}

fn desired(id: &str, name: &str) -> DesiredGroup {
    DesiredGroup {
        source_id: SourceId::new(id),
        display_name: name.into(),
        members: Vec::new(),
    }
}

impl Teams {
    /// `read` with these groups, and the requests it sent.
    async fn read(
        &self,
        desired: Vec<DesiredGroup>,
        links: Vec<GroupLink>,
        full: bool,
    ) -> (GroupSide, u64) {
        let store = self.world.store();
        let before = self.world.emu.emulator.stats().requests;
        let side = read(&store, &self.client, desired, links, &self.config, full)
            .await
            .unwrap();
        (side, self.world.emu.emulator.stats().requests - before)
    }

    /// Eng linked, with the members the store last saw (not the target's).
    fn eng_link(&self) -> GroupLink {
        GroupLink {
            source_id: SourceId::new("g-eng"),
            target_id: self.eng.clone(),
            display_name: "Eng".into(),
            members: vec![ScimId::new("last-seen")],
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_synced_and_everything_linked_cost_no_request() {
    let t = teams().await;
    let (side, requests) = t.read(Vec::new(), Vec::new(), false).await;
    assert_eq!((side.reads, requests), (0, 0));
    assert!(side.desired.is_empty() && side.links.is_empty());

    let (side, requests) = t
        .read(vec![desired("g-eng", "Eng")], vec![t.eng_link()], false)
        .await;
    assert_eq!((side.reads, requests), (0, 0));
    assert!(!side.view.complete, "the links stand for the groups");
    assert_eq!(side.links, [t.eng_link()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlinked_group_costs_one_list_and_one_read() {
    let t = teams().await;
    let (side, requests) = t
        .read(
            vec![desired("g-eng", "Eng"), desired("g-sales", "Sales")],
            vec![t.eng_link()],
            false,
        )
        .await;
    // The list, then Sales (matched by name); Eng keeps its link's members.
    assert_eq!((side.reads, requests), (1, 2));
    assert!(side.view.complete);
    let members = |name: &str| {
        side.view
            .groups
            .iter()
            .find(|g| g.display_name == name)
            .and_then(|g| g.members.clone())
    };
    assert_eq!(members("Eng"), Some(vec![ScimId::new("last-seen")]));
    assert_eq!(members("Sales").map(|m| m.len()), Some(1));

    // A full cycle reads every linked synced group too.
    let (side, requests) = t
        .read(
            vec![desired("g-eng", "Eng"), desired("g-sales", "Sales")],
            vec![t.eng_link()],
            true,
        )
        .await;
    assert_eq!((side.reads, requests), (2, 3));
    assert_eq!(
        side.links[0].members.len(),
        1,
        "the link starts from the read"
    );
    assert_ne!(side.links[0].members, [ScimId::new("last-seen")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_known_missing_is_looked_for_on_full_cycles_only() {
    let t = teams().await;
    let mut store = t.world.store();
    // A cycle planned a skip for "Research": no such team.
    let plan = scimsync_model::Plan {
        ops: vec![scimsync_model::Op::GroupSkip {
            source_id: SourceId::new("g-research"),
            display_name: "Research".into(),
            target_id: None,
            reason: scimsync_model::GroupSkipReason::NoMatchingTeam,
        }],
    };
    crate::groups::remember_missing_teams(&mut store, &plan).unwrap();
    drop(store);

    let (side, requests) = t
        .read(vec![desired("g-research", "Research")], Vec::new(), false)
        .await;
    assert_eq!(requests, 0);
    assert!(side.desired.is_empty(), "left out of the incremental cycle");

    let (side, requests) = t
        .read(vec![desired("g-research", "Research")], Vec::new(), true)
        .await;
    assert_eq!(requests, 1, "listed again on a full cycle");
    assert_eq!(side.desired.len(), 1);
}
