//! The emulated organization: users and groups, kept in creation order, with the indexes
//! every request needs (id → record, lower-cased userName → record).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const ROLE_USER: &str = "ORGANIZATION_INTERNAL_USER";
pub const ROLE_ADMIN: &str = "ORGANIZATION_INTERNAL_ADMIN";

/// What Miro stores for a user. Everything not listed here is dropped on write, as Miro does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    /// As sent by the client; uniqueness is case-insensitive.
    pub user_name: String,
    pub display_name: String,
    pub active: bool,
    /// Guests exist in the org but SCIM never shows them.
    pub guest: bool,
    /// ORGANIZATION_INTERNAL_USER or ORGANIZATION_INTERNAL_ADMIN.
    pub role: String,
    pub user_type: String,
    /// Admin roles (`organization_admin_role`) besides the primary role.
    #[serde(default)]
    pub admin_roles: Vec<String>,
    pub preferred_language: Option<String>,
    /// Stored extension attributes keyed by schema URN; today only the enterprise extension
    /// `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {...}}`.
    pub attributes: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub id: String,
    pub display_name: String,
    /// User ids, in the order they were added.
    pub members: Vec<String>,
}

/// A Miro team (REST API) and the user groups assigned to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRecord {
    pub id: String,
    pub name: String,
    /// User group ids, in the order they were assigned.
    pub groups: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Directory {
    users: BTreeMap<u64, UserRecord>,
    teams: Vec<TeamRecord>,
    user_seq: HashMap<String, u64>,
    by_name: HashMap<String, u64>,
    groups: BTreeMap<u64, GroupRecord>,
    group_seq: HashMap<String, u64>,
    next: u64,
}

impl Directory {
    /// Miro ids are 19-digit numeric strings; clients must treat them as opaque.
    fn next_id(&mut self, prefix: &str) -> (u64, String) {
        self.next += 1;
        (self.next, format!("{prefix}{:09}", self.next))
    }

    pub fn new_user_id(&mut self) -> (u64, String) {
        self.next_id("3074457345")
    }

    pub fn new_group_id(&mut self) -> (u64, String) {
        self.next_id("3458764577")
    }

    pub fn new_team_id(&mut self) -> String {
        self.next_id("3074457349").1
    }

    pub fn add_team(&mut self, team: TeamRecord) {
        self.teams.push(team);
    }

    pub fn teams(&self) -> &[TeamRecord] {
        &self.teams
    }

    pub fn team_mut(&mut self, id: &str) -> Option<&mut TeamRecord> {
        self.teams.iter_mut().find(|t| t.id == id)
    }

    pub fn insert_user(&mut self, seq: u64, user: UserRecord) {
        self.by_name.insert(user.user_name.to_lowercase(), seq);
        self.user_seq.insert(user.id.clone(), seq);
        self.users.insert(seq, user);
    }

    /// Any user, guests included.
    pub fn user(&self, id: &str) -> Option<&UserRecord> {
        self.user_seq.get(id).and_then(|s| self.users.get(s))
    }

    /// A user SCIM may see: guests answer 404 like unknown ids.
    pub fn member(&self, id: &str) -> Option<&UserRecord> {
        self.user(id).filter(|u| !u.guest)
    }

    pub fn user_by_name(&self, user_name: &str) -> Option<&UserRecord> {
        self.by_name
            .get(&user_name.to_lowercase())
            .and_then(|s| self.users.get(s))
    }

    /// Replaces a stored user (same id), keeping the userName index in step.
    pub fn update_user(&mut self, user: UserRecord) {
        let Some(&seq) = self.user_seq.get(&user.id) else {
            return;
        };
        if let Some(old) = self.users.get(&seq) {
            self.by_name.remove(&old.user_name.to_lowercase());
        }
        self.by_name.insert(user.user_name.to_lowercase(), seq);
        self.users.insert(seq, user);
    }

    pub fn remove_user(&mut self, id: &str) {
        if let Some(seq) = self.user_seq.remove(id)
            && let Some(u) = self.users.remove(&seq)
        {
            self.by_name.remove(&u.user_name.to_lowercase());
        }
        for g in self.groups.values_mut() {
            g.members.retain(|m| m != id);
        }
    }

    /// All users in creation order, guests included.
    pub fn users(&self) -> impl Iterator<Item = &UserRecord> {
        self.users.values()
    }

    pub fn members(&self) -> impl Iterator<Item = &UserRecord> {
        self.users.values().filter(|u| !u.guest)
    }

    pub fn active_admins(&self) -> impl Iterator<Item = &UserRecord> {
        self.members().filter(|u| u.active && u.role == ROLE_ADMIN)
    }

    pub fn insert_group(&mut self, seq: u64, group: GroupRecord) {
        self.group_seq.insert(group.id.clone(), seq);
        self.groups.insert(seq, group);
    }

    pub fn group(&self, id: &str) -> Option<&GroupRecord> {
        self.group_seq.get(id).and_then(|s| self.groups.get(s))
    }

    pub fn group_mut(&mut self, id: &str) -> Option<&mut GroupRecord> {
        self.group_seq.get(id).and_then(|s| self.groups.get_mut(s))
    }

    pub fn group_by_name(&self, name: &str) -> Option<&GroupRecord> {
        self.groups.values().find(|g| g.display_name == name)
    }

    /// Removes a group, and with it its team assignments (a deleted user group leaves its
    /// teams).
    pub fn remove_group(&mut self, id: &str) -> Option<GroupRecord> {
        for team in &mut self.teams {
            team.groups.retain(|g| g != id);
        }
        self.group_seq
            .remove(id)
            .and_then(|s| self.groups.remove(&s))
    }

    pub fn groups(&self) -> impl Iterator<Item = &GroupRecord> {
        self.groups.values()
    }

    /// The teams a user is in, as (id, displayName).
    pub fn groups_of<'a>(&'a self, user_id: &'a str) -> impl Iterator<Item = &'a GroupRecord> + 'a {
        self.groups
            .values()
            .filter(move |g| g.members.iter().any(|m| m == user_id))
    }
}
