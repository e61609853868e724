use std::net::Ipv4Addr;

use super::test_server::{TestDnsServer, Zone};
use super::*;

const NAMESPACE_SEARCH: &str =
    "search monitoring.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n";

fn store_zone(stores: u8) -> Zone {
    let mut zone = Zone::default();
    let targets = (1..=stores)
        .map(|index| SrvTarget {
            target: format!("strata-store-{index}.strata-store.monitoring.svc.cluster.local"),
            port: 10901,
        })
        .collect();
    zone.srv.insert(
        "_grpc._tcp.strata-store.monitoring.svc.cluster.local".into(),
        targets,
    );
    for index in 1..=stores {
        zone.a.insert(
            format!("strata-store-{index}.strata-store.monitoring.svc.cluster.local"),
            vec![Ipv4Addr::new(10, 0, 0, index)],
        );
    }
    zone
}

fn resolver_for(server: &TestDnsServer, extra: &str) -> Resolver {
    Resolver::from_resolv_conf(&format!("nameserver 127.0.0.1\n{extra}"), server.port)
        .expect("resolver from resolv.conf")
}

#[tokio::test]
async fn truncated_srv_answer_is_retried_over_tcp() {
    let zone = Zone {
        udp_max_answers: Some(3),
        ..store_zone(40)
    };
    let server = TestDnsServer::start(zone).await.expect("dns server");
    let resolver = resolver_for(&server, "");
    let found = resolver
        .resolve("dnssrvnoa+_grpc._tcp.strata-store.monitoring.svc.cluster.local.")
        .await
        .expect("srv lookup");
    assert_eq!(found.len(), 40, "{found:?}");
    assert!(
        found.contains(
            &"strata-store-40.strata-store.monitoring.svc.cluster.local:10901".to_owned()
        )
    );
    assert!(
        server.truncated_answers() >= 1,
        "UDP answer was not truncated"
    );
    assert!(server.tcp_queries() >= 1, "no TCP retry");
}

#[tokio::test]
async fn search_domains_and_ndots_resolve_short_service_names() {
    let server = TestDnsServer::start(store_zone(3))
        .await
        .expect("dns server");
    let resolver = resolver_for(&server, NAMESPACE_SEARCH);
    let found = resolver
        .resolve("dnssrv+_grpc._tcp.strata-store")
        .await
        .expect("short srv name through the search list");
    assert_eq!(
        found,
        vec!["10.0.0.1:10901", "10.0.0.2:10901", "10.0.0.3:10901"]
    );
    let found = resolver
        .resolve("dns+strata-store-2.strata-store:19090")
        .await
        .expect("short host name through the search list");
    assert_eq!(found, vec!["10.0.0.2:19090"]);

    // Without the search list the short name is not found.
    let bare = resolver_for(&server, "");
    assert!(
        bare.resolve("dnssrv+_grpc._tcp.strata-store")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn literals_ports_and_failures() {
    let server = TestDnsServer::start(store_zone(1))
        .await
        .expect("dns server");
    let resolver = resolver_for(&server, "");
    assert_eq!(
        resolver.resolve("10.1.2.3:10901").await.expect("plain"),
        vec!["10.1.2.3:10901"]
    );
    assert_eq!(
        resolver.resolve("dns+127.0.0.1:1").await.expect("ipv4"),
        vec!["127.0.0.1:1"]
    );
    assert_eq!(
        resolver.resolve("dns+[::1]:2").await.expect("ipv6"),
        vec!["[::1]:2"]
    );
    assert!(resolver.resolve("dns+strata-store").await.is_err());
    assert!(resolver.resolve("dns+strata-store:http").await.is_err());
    let missing = resolver
        .resolve("dnssrv+_grpc._tcp.missing.example.")
        .await
        .expect_err("nxdomain");
    assert!(missing.to_string().contains("missing.example"), "{missing}");
    assert!(is_dns_address("dnssrvnoa+x") && !is_dns_address("x:1"));
}

#[test]
fn resolv_conf_without_nameservers_is_rejected() {
    assert!(Resolver::from_resolv_conf("search a.b\n", 53).is_err());
}
