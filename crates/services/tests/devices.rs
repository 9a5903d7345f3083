//! The device-identity services against a real SQLite store: what `DeviceDirectory` tells the
//! broker about a connecting certificate (refusals and credentials), the change events the
//! certificate and policy operations announce, and presence records with their effect on
//! dynamic groups. Time comes from a test clock.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use drover_core::arn::ArnScope;
use drover_core::indexing::IndexingConfiguration;
use drover_core::policy::DnAttribute;
use drover_core::registry::{ThingGroupSpec, ThingSpec};
use drover_core::time::Timestamp;
use drover_services::certificates::RegisterCa;
use drover_services::dynamic_groups::DynamicGroupSpec;
use drover_services::{
    Clock, DeviceCa, DeviceRefusal, DeviceServices, FleetIndex, PresenceUpdate, PrincipalChange,
    Registry, ServiceError,
};
use drover_store::{SharedStore, SqliteStore};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use time::{Duration, OffsetDateTime};
use tokio::sync::broadcast;

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#;
const ALLOW_CONNECT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;

/// A clock tests move by hand.
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

impl TestClock {
    fn set(&self, at: OffsetDateTime) {
        self.0.store(
            (at.unix_timestamp_nanos() / 1_000_000) as i64,
            Ordering::SeqCst,
        );
    }
}

struct Fixture {
    devices: DeviceServices,
    registry: Registry,
    index: FleetIndex,
    clock: Arc<TestClock>,
    _dir: tempfile::TempDir,
}

/// A CA: its certificate PEM and the issuer that signs with it.
struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn test_ca(name: &str) -> TestCa {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
    let cert = params.self_signed(&key).unwrap();
    let pem = cert.pem();
    TestCa {
        issuer: Issuer::from_ca_cert_pem(&pem, key).unwrap(),
        pem,
    }
}

/// A leaf certificate signed by `ca`, valid for `days` from yesterday.
fn leaf(ca: &TestCa, common_name: &str, days: i64) -> (String, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Acme");
    params.distinguished_name = dn;
    params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(days);
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), cert.der().to_vec())
}

fn der_of(pem: &str) -> Vec<u8> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    block.contents
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(SqliteStore::open(&dir.path().join("drover.db")).unwrap());
    let clock = Arc::new(TestClock(AtomicI64::new(0)));
    clock.set(OffsetDateTime::now_utc());
    let scope = ArnScope::new("us-east-1", "123456789012");
    let registry = Registry::new(store.clone(), scope.clone(), clock.clone());
    let index = FleetIndex::new(store.clone(), registry.membership().clone());
    let own = test_ca("drover root CA");
    let key_pem = own.issuer.key().serialize_pem();
    let ca = DeviceCa::new(&own.pem, &key_pem).unwrap();
    let devices = DeviceServices::new(
        store,
        scope,
        clock.clone(),
        ca,
        registry.membership().clone(),
    );
    Fixture {
        devices,
        registry,
        index,
        clock,
        _dir: dir,
    }
}

fn drain(rx: &mut broadcast::Receiver<PrincipalChange>) -> Vec<PrincipalChange> {
    let mut out = Vec::new();
    while let Ok(change) = rx.try_recv() {
        out.push(change);
    }
    out
}

#[tokio::test]
async fn issued_certificates_authenticate_with_their_policies_and_thing() {
    let f = fixture().await;
    let issued = f
        .devices
        .certificates
        .create_keys_and_certificate(true)
        .await
        .unwrap();
    assert!(issued.private_key_pem.contains("PRIVATE KEY"));
    assert!(issued.public_key_pem.contains("PUBLIC KEY"));
    let id = issued.certificate.id.clone();
    let der = der_of(&issued.certificate.pem);

    // Registered and ACTIVE, but nothing attached: no policies, no thing.
    let bare = f
        .devices
        .directory
        .authenticate(&der, "sensor-1")
        .await
        .unwrap();
    assert_eq!(bare.certificate_id, id);
    assert_eq!(
        bare.certificate_arn,
        format!("arn:aws:iot:us-east-1:123456789012:cert/{id}")
    );
    assert!(bare.policies.is_empty());
    assert_eq!(bare.context.thing, None);
    assert_eq!(bare.context.client_id.as_deref(), Some("sensor-1"));
    let facts = bare.context.certificate.unwrap();
    assert_eq!(facts.id, id);
    assert_eq!(
        facts.subject.get(DnAttribute::CommonName),
        Some("AWS IoT Certificate")
    );
    assert_eq!(
        facts.issuer.get(DnAttribute::CommonName),
        Some("drover root CA")
    );
    assert!(
        facts
            .serial_number
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit())
    );

    // A thing named by the client id but not attached: visible as not attached.
    let mut spec = ThingSpec {
        name: "sensor-1".into(),
        type_name: None,
        attributes: Default::default(),
    };
    spec.attributes.insert("site".into(), "berlin".into());
    f.registry.create_thing(spec).await.unwrap();
    let unattached = f
        .devices
        .directory
        .authenticate(&der, "sensor-1")
        .await
        .unwrap();
    let thing = unattached.context.thing.unwrap();
    assert!(!thing.is_attached);

    // Attach the certificate and policies (directly, and through a parent thing group).
    let arn = issued.certificate_arn();
    f.devices
        .certificates
        .attach_thing_principal("sensor-1", &arn, None)
        .await
        .unwrap();
    f.devices
        .policies
        .create_policy("connect", ALLOW_CONNECT)
        .await
        .unwrap();
    f.devices
        .policies
        .create_policy("all", ALLOW_ALL)
        .await
        .unwrap();
    f.devices
        .policies
        .attach_policy("connect", &arn)
        .await
        .unwrap();
    f.registry
        .create_thing_group(ThingGroupSpec {
            name: "fleet".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    f.registry
        .create_thing_group(ThingGroupSpec {
            name: "line-a".into(),
            parent: Some("fleet".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    f.registry
        .add_thing_to_thing_group(
            drover_services::registry::NameOrArn {
                name: Some("line-a".into()),
                arn: None,
            },
            drover_services::registry::NameOrArn {
                name: Some("sensor-1".into()),
                arn: None,
            },
            false,
        )
        .await
        .unwrap();
    f.devices
        .policies
        .attach_policy("all", "arn:aws:iot:us-east-1:123456789012:thinggroup/fleet")
        .await
        .unwrap();
    let full = f
        .devices
        .directory
        .authenticate(&der, "sensor-1")
        .await
        .unwrap();
    let names: Vec<&str> = full.policies.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["all", "connect"]);
    let thing = full.context.thing.unwrap();
    assert!(thing.is_attached);
    assert_eq!(
        thing.attributes.get("site").map(String::as_str),
        Some("berlin")
    );
    // Another client id: the group's policy does not apply (the thing is not attached).
    let other = f
        .devices
        .directory
        .authenticate(&der, "not a thing!")
        .await
        .unwrap();
    let names: Vec<&str> = other.policies.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["connect"]);
    assert_eq!(other.context.thing, None);
}

trait Arn {
    fn certificate_arn(&self) -> String;
}

impl Arn for drover_services::certificates::IssuedCertificate {
    fn certificate_arn(&self) -> String {
        format!(
            "arn:aws:iot:us-east-1:123456789012:cert/{}",
            self.certificate.id
        )
    }
}

#[tokio::test]
async fn refusals_name_the_reason() {
    let f = fixture().await;
    let directory = &f.devices.directory;
    let certificates = &f.devices.certificates;

    assert!(matches!(
        directory.authenticate(b"garbage", "c").await,
        Err(DeviceRefusal::Malformed(_))
    ));
    let stranger = test_ca("stranger");
    let (_, der) = leaf(&stranger, "x", 30);
    assert!(matches!(
        directory.authenticate(&der, "c").await,
        Err(DeviceRefusal::NotRegistered { .. })
    ));

    let inactive = certificates
        .create_keys_and_certificate(false)
        .await
        .unwrap();
    let der = der_of(&inactive.certificate.pem);
    match directory.authenticate(&der, "c").await {
        Err(DeviceRefusal::NotActive { status, .. }) => assert_eq!(status, "INACTIVE"),
        other => panic!("unexpected {other:?}"),
    }
    certificates
        .update_certificate(&inactive.certificate.id, "ACTIVE")
        .await
        .unwrap();
    directory.authenticate(&der, "c").await.unwrap();
    certificates
        .update_certificate(&inactive.certificate.id, "REVOKED")
        .await
        .unwrap();
    match directory.authenticate(&der, "c").await {
        Err(DeviceRefusal::NotActive { status, .. }) => assert_eq!(status, "REVOKED"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        certificates
            .update_certificate(&inactive.certificate.id, "ACTIVE")
            .await,
        Err(ServiceError::CertificateState(_))
    ));

    // A certificate of a registered CA: refused once the CA is deactivated.
    let fleet = test_ca("fleet CA");
    let code = certificates.registration_code().await.unwrap();
    let (verification, _) = leaf(&fleet, &code, 30);
    let ca = certificates
        .register_ca_certificate(RegisterCa {
            ca_certificate: fleet.pem.clone(),
            verification_certificate: Some(verification),
            set_as_active: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let (device_pem, device_der) = leaf(&fleet, "device-7", 30);
    let device = certificates
        .register_certificate(&device_pem, Some(&fleet.pem), Some(true), None)
        .await
        .unwrap();
    assert_eq!(device.ca_certificate_id.as_deref(), Some(ca.id.as_str()));
    directory
        .authenticate(&device_der, "device-7")
        .await
        .unwrap();
    let mut changes = directory.changes();
    certificates
        .update_ca_certificate(
            &ca.id,
            drover_services::certificates::UpdateCa {
                new_status: Some("INACTIVE".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        directory.authenticate(&device_der, "device-7").await,
        Err(DeviceRefusal::CaNotActive { .. })
    ));
    assert_eq!(
        drain(&mut changes),
        [PrincipalChange::CertificateDeactivated {
            certificate_id: device.id.clone()
        }]
    );

    // Validity is judged at the injected clock's now.
    let (short_pem, short_der) = leaf(&stranger, "short-lived", 2);
    let short = certificates
        .register_certificate_without_ca(&short_pem, Some("ACTIVE"))
        .await
        .unwrap();
    directory.authenticate(&short_der, "c").await.unwrap();
    f.clock.set(OffsetDateTime::now_utc() + Duration::days(5));
    assert!(matches!(
        directory.authenticate(&short_der, "c").await,
        Err(DeviceRefusal::Expired { .. })
    ));
    f.clock.set(OffsetDateTime::now_utc() - Duration::days(5));
    assert!(matches!(
        directory.authenticate(&short_der, "c").await,
        Err(DeviceRefusal::NotYetValid { .. })
    ));
    assert_eq!(short.mode, "SNI_ONLY");
}

#[tokio::test]
async fn certificate_and_policy_changes_are_announced() {
    let f = fixture().await;
    let certificates = &f.devices.certificates;
    let policies = &f.devices.policies;
    let mut changes = f.devices.directory.changes();
    let issued = certificates
        .create_keys_and_certificate(true)
        .await
        .unwrap();
    let id = issued.certificate.id.clone();
    let arn = issued.certificate_arn();
    f.registry
        .create_thing(ThingSpec {
            name: "t1".into(),
            type_name: None,
            attributes: Default::default(),
        })
        .await
        .unwrap();
    assert!(drain(&mut changes).is_empty(), "creating announces nothing");

    let mine = PrincipalChange::PermissionsChanged {
        certificate_id: Some(id.clone()),
    };
    let anyone = PrincipalChange::PermissionsChanged {
        certificate_id: None,
    };
    certificates
        .attach_thing_principal("t1", &arn, Some("EXCLUSIVE_THING"))
        .await
        .unwrap();
    assert_eq!(drain(&mut changes), vec![mine.clone()]);
    policies.create_policy("p", ALLOW_CONNECT).await.unwrap();
    policies.attach_policy("p", &arn).await.unwrap();
    assert_eq!(drain(&mut changes), vec![mine.clone()]);
    policies.attach_policy("p", &arn).await.unwrap();
    assert!(
        drain(&mut changes).is_empty(),
        "a repeated attach changes nothing"
    );
    policies
        .create_policy_version("p", ALLOW_ALL, false)
        .await
        .unwrap();
    assert!(
        drain(&mut changes).is_empty(),
        "a non-default version changes nothing"
    );
    policies.set_default_policy_version("p", "2").await.unwrap();
    assert_eq!(drain(&mut changes), vec![anyone.clone()]);
    policies
        .create_policy_version("p", ALLOW_CONNECT, true)
        .await
        .unwrap();
    assert_eq!(drain(&mut changes), vec![anyone]);
    policies.detach_policy("p", &arn).await.unwrap();
    assert_eq!(drain(&mut changes), vec![mine.clone()]);
    certificates
        .detach_thing_principal("t1", &arn)
        .await
        .unwrap();
    assert_eq!(drain(&mut changes), vec![mine]);
    certificates
        .update_certificate(&id, "INACTIVE")
        .await
        .unwrap();
    let deactivated = PrincipalChange::CertificateDeactivated {
        certificate_id: id.clone(),
    };
    assert_eq!(drain(&mut changes), vec![deactivated.clone()]);
    certificates
        .update_certificate(&id, "INACTIVE")
        .await
        .unwrap();
    assert!(
        drain(&mut changes).is_empty(),
        "UpdateCertificate is idempotent"
    );
    certificates.delete_certificate(&id, false).await.unwrap();
    assert_eq!(drain(&mut changes), vec![deactivated]);
}

#[tokio::test]
async fn presence_versions_and_connectivity_driven_groups() {
    let f = fixture().await;
    let mut configuration = IndexingConfiguration::default();
    configuration
        .thing_indexing_configuration
        .thing_indexing_mode = "REGISTRY".into();
    configuration
        .thing_indexing_configuration
        .thing_connectivity_indexing_mode = Some("STATUS".into());
    f.index.update_configuration(configuration).await.unwrap();
    f.registry
        .create_thing(ThingSpec {
            name: "dev1".into(),
            type_name: None,
            attributes: Default::default(),
        })
        .await
        .unwrap();
    f.registry
        .create_dynamic_thing_group(DynamicGroupSpec {
            group: ThingGroupSpec {
                name: "online".into(),
                ..Default::default()
            },
            query_string: "connectivity.connected:true".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let members = || async { f.registry.membership().all_members("online").await.unwrap() };
    assert!(members().await.is_empty());

    let update = |connected: bool, at: i64, session: &str| PresenceUpdate {
        connected,
        timestamp_ms: at,
        session_identifier: session.into(),
        disconnect_reason: (!connected).then(|| "CLIENT_INITIATED_DISCONNECT".into()),
    };
    let directory = &f.devices.directory;
    assert_eq!(
        directory
            .record_presence("dev1", update(true, 1_000, "s1"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(members().await, ["dev1"]);
    let found = f
        .index
        .search(
            &drover_services::index::IndexQuery {
                index_name: None,
                query_string: "connectivity.connected:true".into(),
                query_version: None,
            },
            None,
            None,
        )
        .await
        .unwrap();
    let connectivity = found.things[0].connectivity.clone().unwrap();
    assert!(connectivity.connected);
    assert_eq!(connectivity.timestamp, 1_000);

    // A newer session takes over; the old one's late disconnect leaves the client online.
    assert_eq!(
        directory
            .record_presence("dev1", update(true, 2_000, "s2"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        directory
            .record_presence("dev1", update(false, 2_001, "s1"))
            .await
            .unwrap(),
        3
    );
    assert_eq!(members().await, ["dev1"]);
    assert_eq!(
        directory
            .record_presence("dev1", update(false, 3_000, "s2"))
            .await
            .unwrap(),
        4
    );
    assert!(members().await.is_empty());
    // Clients without a thing are recorded too.
    assert_eq!(
        directory
            .record_presence("no-thing", update(true, 1, "x"))
            .await
            .unwrap(),
        1
    );
}
