//! Who did something: a person signed in to the console, an API key, the service itself, or
//! someone at the command line. Services take one and the audit trail records it.

use super::api_key::Role;
use super::staff::StaffMember;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person in the staff console, with the roles their identity provider gave them.
    Person(StaffMember),
    /// An API key (the CRM, finance's systems, an administrator's script).
    Key {
        id: String,
        role: Role,
        label: String,
    },
    /// The service itself, doing what nobody asked for at the time: `id` as the records have
    /// always named it (`system`; `nightly` for the nightly reconciliation), `what` the job.
    System {
        id: &'static str,
        what: &'static str,
    },
    /// Someone at the command line (`what`: the command).
    CommandLine(&'static str),
}

impl Actor {
    /// The retention sweep on its schedule.
    pub const SWEEP: Actor = Actor::System {
        id: "system",
        what: "retention sweep",
    };
    /// The nightly reconciliation (one per account and day: the records know it as `nightly`).
    pub const NIGHTLY_RECONCILIATION: Actor = Actor::System {
        id: "nightly",
        what: "nightly reconciliation",
    };
    /// Counterfoil itself, acting on what it was told (a refund the provider refused).
    pub const COUNTERFOIL: Actor = Actor::System {
        id: "system",
        what: "Counterfoil",
    };

    /// The audit trail's actor id: `staff:<subject>`, the key's id, `system` or `cli`.
    pub fn id(&self) -> String {
        match self {
            Self::Person(member) => member.actor_id(),
            Self::Key { id, .. } => id.clone(),
            Self::System { id, .. } => (*id).to_owned(),
            Self::CommandLine(_) => "cli".into(),
        }
    }

    /// How the audit trail names it: a person's name and roles, a key's label, the job or the
    /// command.
    pub fn label(&self) -> String {
        match self {
            Self::Person(member) => member.actor_label(),
            Self::Key { label, .. } => label.clone(),
            Self::System { what, .. } | Self::CommandLine(what) => (*what).to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_actor_has_an_id_and_a_label_for_the_audit_trail() {
        let person = Actor::Person(StaffMember {
            subject: "abc".into(),
            name: "Fiona Finance".into(),
            roles: [crate::domain::staff::StaffRole::Refunder]
                .into_iter()
                .collect(),
        });
        assert_eq!(person.id(), "staff:abc");
        assert!(person.label().starts_with("Fiona Finance"));
        let key = Actor::Key {
            id: "k3Jd9aQ2mB7x".into(),
            role: Role::Finance,
            label: "Finance team".into(),
        };
        assert_eq!(
            (key.id(), key.label()),
            ("k3Jd9aQ2mB7x".into(), "Finance team".into())
        );
        assert_eq!(Actor::SWEEP.id(), "system");
        assert_eq!(Actor::SWEEP.label(), "retention sweep");
        assert_eq!(Actor::CommandLine("counterfoil purge").id(), "cli");
    }
}
