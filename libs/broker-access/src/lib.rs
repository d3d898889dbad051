//! Who may do what on the broker: the NATS users of OneDoor and their
//! permissions, in one table that the local servers, the tests, compose and
//! the k8s overlays all render from (ADR 0014).
//!
//! NATS is a trust boundary: a referral, an approval or a payment is believed
//! because of the subject it arrived on. So each service connects as its own
//! user (an nkey: the server holds only the public key) that may publish on
//! its own subjects and nothing else, may declare and read only its own
//! stream and consumers, and receives replies on an inbox prefix of its own,
//! so that no service can read another's pulled messages. Intake then knows
//! which department a report came from by the subject alone, and checks the
//! payload against it.
//!
//! Besides the services there is one [`OPERATOR`] user with every
//! permission, for operators' tools and for tests that play the broker's
//! other clients (a forger included).

use onedoor_contracts::{Department, dead_letter_stream, dead_letter_subject};

/// The operators' user: every permission (tools, drills, tests).
pub const OPERATOR: &str = "operator";

/// A service that connects to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    Intake,
    Department(Department),
}

impl Principal {
    /// Intake, then the departments in the order of the aid-line table.
    pub fn all() -> Vec<Principal> {
        std::iter::once(Self::Intake).chain(Department::ALL.into_iter().map(Self::Department)).collect()
    }

    /// The service's name (binary, NATS connection, compose and k8s name).
    pub fn service(self) -> &'static str {
        match self {
            Self::Intake => "intake",
            Self::Department(d) => d.line().service,
        }
    }

    pub fn from_service(service: &str) -> Option<Self> {
        Self::all().into_iter().find(|p| p.service() == service)
    }

    /// The service that runs the consumer named `durable`.
    pub fn running(durable: &str) -> Option<Self> {
        Self::all().into_iter().find(|p| p.consumers().iter().any(|c| c.name == durable))
    }

    /// The stream the service publishes to.
    pub fn own_stream(self) -> &'static str {
        match self {
            Self::Intake => onedoor_contracts::intake::STREAM,
            Self::Department(d) => d.stream(),
        }
    }

    /// The subjects the service publishes its events on.
    pub fn own_subjects(self) -> String {
        match self {
            Self::Intake => onedoor_contracts::intake::subjects(),
            Self::Department(d) => d.subjects(),
        }
    }

    /// Each consumer the service runs.
    pub fn consumers(self) -> Vec<Durable> {
        match self {
            Self::Intake => Department::ALL.into_iter().map(lanes_consumer).chain([notifications_consumer()]).collect(),
            Self::Department(d) => window_consumers(d),
        }
    }

    /// The environment variable holding the service's nkey public key in the
    /// server's configuration (compose and k8s), e.g. `ONEDOOR_NKEY_MEDICAL_AID`.
    pub fn public_key_variable(self) -> String {
        format!("ONEDOOR_NKEY_{}", self.service().to_uppercase().replace('-', "_"))
    }

    /// What the service may publish and subscribe to.
    pub fn grant(self) -> Grant {
        let js = |rest: String| format!("$JS.API.{rest}");
        let mut publish = vec![self.own_subjects(), js("INFO".into())];
        let dead_letters = dead_letter_stream(self.service());
        for action in ["CREATE", "UPDATE", "INFO"] {
            publish.push(js(format!("STREAM.{action}.{}", self.own_stream())));
            publish.push(js(format!("STREAM.{action}.{dead_letters}")));
        }
        // Erasing its own messages about an erased household (ADR 0019).
        publish.push(js(format!("STREAM.MSG.DELETE.{}", self.own_stream())));
        // Listing and replaying its own dead letters (see `dead_letter`).
        publish.push(js(format!("STREAM.MSG.GET.{dead_letters}")));
        publish.push(js(format!("STREAM.MSG.DELETE.{dead_letters}")));
        for Durable { service, stream, name, filter } in self.consumers() {
            let info = js(format!("STREAM.INFO.{stream}"));
            if !publish.contains(&info) {
                publish.push(info);
            }
            // Only with its one filter: no other subject, and not several.
            publish.push(js(format!("CONSUMER.CREATE.{stream}.{name}.{filter}")));
            publish.push(js(format!("CONSUMER.INFO.{stream}.{name}")));
            publish.push(js(format!("CONSUMER.MSG.NEXT.{stream}.{name}")));
            publish.push(format!("$JS.ACK.{stream}.{name}.>"));
            publish.push(dead_letter_subject(service, &name));
        }
        if let Self::Department(d) = self {
            // The one consumer of several filters the ones of one subject replaced, removed at start-up.
            publish.push(js(format!("CONSUMER.DELETE.{}.{}", onedoor_contracts::intake::STREAM, window_inbox(d))));
        }
        Grant { publish, subscribe: vec![format!("{}.>", inbox_prefix(self.service()))] }
    }
}

/// A durable consumer a service runs: one subject of one stream.
///
/// One subject, never several: a consumer created with a single filter
/// names it in the request's subject (`$JS.API.CONSUMER.CREATE.<stream>.
/// <durable>.<filter>`, and the server refuses a configuration that filters
/// otherwise), so a service's grant pins what each of its consumers reads.
/// A request for several filters names none, and would let a department
/// create its consumer on another department's referrals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durable {
    /// The service that runs it (and keeps its dead letters).
    pub service: &'static str,
    pub stream: &'static str,
    pub name: String,
    pub filter: String,
}

/// Intake's consumer of one department's reports.
pub fn lanes_consumer(department: Department) -> Durable {
    Durable {
        service: Principal::Intake.service(),
        stream: department.stream(),
        name: lanes_durable(department),
        filter: format!("{}.{department}.referral.>", onedoor_contracts::SUBJECT_PREFIX),
    }
}

/// The name of intake's consumer of one department's reports.
pub fn lanes_durable(department: Department) -> String {
    format!("intake-lanes-{department}")
}

/// The name of intake's consumer of the applicant's messages.
pub const NOTIFICATIONS_DURABLE: &str = "intake-notifications";

/// Intake's consumer of the applicant's messages.
pub fn notifications_consumer() -> Durable {
    Durable {
        service: Principal::Intake.service(),
        stream: onedoor_contracts::intake::STREAM,
        name: NOTIFICATIONS_DURABLE.to_string(),
        filter: format!("{}.intake.notification.>", onedoor_contracts::SUBJECT_PREFIX),
    }
}

/// A department's consumers of the window's events, one per subject: its
/// referrals, the scans its referrals need, and the supplements,
/// withdrawals and erasures the window announces to every department
/// (which name referrals, nothing personal). They arrive in any order between them; the
/// department keeps a window event for a referral not received yet.
pub fn window_consumers(department: Department) -> Vec<Durable> {
    use onedoor_contracts::intake;
    let prefix = onedoor_contracts::SUBJECT_PREFIX;
    [
        ("referrals", intake::referral_subject(department)),
        ("documents", intake::document_subject(department)),
        ("supplements", format!("{prefix}.intake.materials.supplemented")),
        ("withdrawals", format!("{prefix}.intake.application.withdrawn")),
        ("erasures", format!("{prefix}.intake.case.erased")),
    ]
    .into_iter()
    .map(|(what, filter)| Durable {
        service: department.line().service,
        stream: intake::STREAM,
        name: format!("{department}-aid-window-{what}"),
        filter,
    })
    .collect()
}

/// The name the window consumers record their events under in the
/// department's inbox: that of the one consumer of several filters they
/// replaced, so that events it handled are not handled again when they
/// read the stream from its start.
pub fn window_inbox(department: Department) -> String {
    format!("{department}-aid-window")
}

/// Where a client named `name` receives its replies (JetStream answers,
/// pulled messages). Each service has its own, and may subscribe to nothing
/// else.
pub fn inbox_prefix(name: &str) -> String {
    format!("_INBOX_{name}")
}

/// Subjects a user may publish and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

impl Grant {
    /// Everything: the operators' user.
    pub fn everything() -> Self {
        Self { publish: vec![">".into()], subscribe: vec![">".into()] }
    }
}

/// How a user's public key appears in the server's configuration.
#[derive(Debug, Clone)]
pub enum PublicKey {
    /// Written into the file (local servers, whose keys are generated per run).
    Literal(String),
    /// Read from the server's environment (compose, k8s: the keys of an
    /// installation come from its secrets, the permissions from this crate).
    Variable(String),
}

/// The `authorization` block of a nats-server configuration for `users`.
pub fn authorization(users: &[(PublicKey, Grant)]) -> String {
    let list = |subjects: &[String]| subjects.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
    let mut out = String::from("authorization {\n  users = [\n");
    for (key, grant) in users {
        let key = match key {
            PublicKey::Literal(k) => format!("\"{k}\""),
            PublicKey::Variable(v) => format!("${v}"),
        };
        out.push_str(&format!(
            "    {{\n      nkey: {key}\n      permissions: {{\n        publish: {{ allow: [{}] }}\n        subscribe: {{ allow: [{}] }}\n      }}\n    }}\n",
            list(&grant.publish),
            list(&grant.subscribe)
        ));
    }
    out.push_str("  ]\n}\n");
    out
}

/// The configuration compose and k8s include: every service and the
/// operators, their keys read from `ONEDOOR_NKEY_<SERVICE>` and
/// `ONEDOOR_NKEY_OPERATOR`. `cargo xtask nats-keys` makes the keys.
pub fn deployed_authorization() -> String {
    let mut users: Vec<(PublicKey, Grant)> =
        Principal::all().into_iter().map(|p| (PublicKey::Variable(p.public_key_variable()), p.grant())).collect();
    users.push((PublicKey::Variable(operator_public_key_variable()), Grant::everything()));
    format!(
        "# Generated by `cargo xtask nats-keys --config` from libs/broker-access; a test\n\
         # fails when it differs. The public keys come from the server's environment.\n{}",
        authorization(&users)
    )
}

pub fn operator_public_key_variable() -> String {
    "ONEDOOR_NKEY_OPERATOR".into()
}

/// A key pair for every service and the operators: generated afresh for
/// each local server, or once per installation by `cargo xtask nats-keys`.
pub struct Keyring {
    keys: Vec<(String, nkeys::KeyPair)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("users", &self.keys.iter().map(|(n, _)| n).collect::<Vec<_>>()).finish()
    }
}

impl Keyring {
    pub fn generate() -> Self {
        let keys = Principal::all()
            .into_iter()
            .map(|p| p.service().to_string())
            .chain([OPERATOR.to_string()])
            .map(|name| (name, nkeys::KeyPair::new_user()))
            .collect();
        Self { keys }
    }

    fn pair(&self, name: &str) -> Option<&nkeys::KeyPair> {
        self.keys.iter().find(|(n, _)| n == name).map(|(_, k)| k)
    }

    /// The secret seed of `name` (a service or [`OPERATOR`]); `None` for a
    /// name the broker does not know.
    pub fn seed(&self, name: &str) -> Option<String> {
        self.pair(name).map(|k| k.seed().expect("a generated key pair has its seed"))
    }

    pub fn public_key(&self, name: &str) -> Option<String> {
        self.pair(name).map(|k| k.public_key())
    }

    /// The `authorization` block with these keys written in.
    pub fn authorization(&self) -> String {
        let grant = |name: &str| match Principal::from_service(name) {
            Some(p) => p.grant(),
            None => Grant::everything(),
        };
        let users: Vec<_> =
            self.keys.iter().map(|(name, key)| (PublicKey::Literal(key.public_key()), grant(name))).collect();
        authorization(&users)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_department_may_publish_only_its_own_subjects_and_dead_letters() {
        let grant = Principal::Department(Department::Medical).grant();
        let plain: Vec<&String> = grant.publish.iter().filter(|s| !s.starts_with('$')).collect();
        assert_eq!(
            plain,
            [
                "onedoor.medical.>",
                "onedoor.dead-letters.medical-aid.medical-aid-window-referrals",
                "onedoor.dead-letters.medical-aid.medical-aid-window-documents",
                "onedoor.dead-letters.medical-aid.medical-aid-window-supplements",
                "onedoor.dead-letters.medical-aid.medical-aid-window-withdrawals",
                "onedoor.dead-letters.medical-aid.medical-aid-window-erasures",
            ]
        );
        assert_eq!(grant.subscribe, ["_INBOX_medical-aid.>"]);
        assert!(!grant.publish.iter().any(|s| s.contains("HOUSING") || s.contains("housing")));
    }

    #[test]
    fn each_service_reaches_only_its_own_dead_letters() {
        for p in Principal::all() {
            let own = dead_letter_stream(p.service());
            let grant = p.grant();
            let reached: Vec<&String> = grant.publish.iter().filter(|s| s.contains("DEAD_LETTERS")).collect();
            assert!(!reached.is_empty(), "{p:?}");
            for s in reached {
                assert!(s.ends_with(&format!(".{own}")), "{p:?} reaches {s}");
            }
        }
    }

    #[test]
    fn each_consumer_may_be_created_only_with_its_one_filter() {
        for p in Principal::all() {
            let grant = p.grant();
            let creates: Vec<&String> = grant.publish.iter().filter(|s| s.contains("CONSUMER.CREATE")).collect();
            let expected: Vec<String> = p
                .consumers()
                .iter()
                .map(|c| format!("$JS.API.CONSUMER.CREATE.{}.{}.{}", c.stream, c.name, c.filter))
                .collect();
            assert_eq!(creates, expected.iter().collect::<Vec<_>>(), "{p:?}");
        }
        let medical = Principal::Department(Department::Medical).grant();
        assert!(medical.publish.iter().all(|s| !s.contains("referral.housing")));
    }

    #[test]
    fn intake_reads_each_department_stream_through_its_own_consumers_only() {
        let grant = Principal::Intake.grant();
        for d in Department::ALL {
            let next = format!("$JS.API.CONSUMER.MSG.NEXT.{}.intake-lanes-{d}", d.stream());
            assert!(grant.publish.contains(&next), "{next}");
            assert!(!grant.publish.iter().any(|s| s == &format!("$JS.API.STREAM.UPDATE.{}", d.stream())));
        }
        assert!(grant.publish.contains(&"onedoor.intake.>".to_string()));
    }

    #[test]
    fn the_checked_in_configuration_is_the_generated_one() {
        let checked_in = include_str!("../../../deploy/nats/auth.conf");
        assert!(
            checked_in == deployed_authorization(),
            "deploy/nats/auth.conf is out of date: run `cargo xtask nats-keys --config`"
        );
    }

    #[test]
    fn the_deployed_configuration_reads_every_key_from_the_environment() {
        let config = deployed_authorization();
        for p in Principal::all() {
            assert!(config.contains(&format!("nkey: ${}", p.public_key_variable())), "{config}");
        }
        assert!(config.contains("nkey: $ONEDOOR_NKEY_OPERATOR"));
        assert_eq!(Principal::from_service("housing-aid"), Some(Principal::Department(Department::Housing)));
    }
}
