//! Is the internet there? The tour's question before its first step.
//!
//! Two signs, cheapest first: a machine with no default route is offline without a
//! packet sent; otherwise every configured STUN server gets one Binding request (name
//! lookup included) within a short budget, and one answer means online. A STUN server is
//! what the tutorial's first steps need, so it is the right thing to ask; a web server
//! answering would not make `Interface().start()` work.

use crate::net::config::StunConfig;
use crate::net::interface::{Gateways, external};
use crate::net::ip_range::Family;
use crate::net::stun::DEFAULT_RTO;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinSet;

/// How long the tour waits for a STUN answer before it decides to stay local.
pub const BUDGET: Duration = Duration::from_millis(1500);

/// The verdict, with the reason an offline one gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    Online,
    Offline(String),
}

/// Which family to ask from: IPv4 when it has a default route, else IPv6, else none.
pub fn ask_family(gateways: &Gateways) -> Option<Family> {
    Family::ALL
        .into_iter()
        .find(|f| gateways.default.contains_key(f))
}

/// Asks `config`'s servers from this machine's default family, all at once, within
/// `budget`: online at the first answer.
pub async fn check(config: &StunConfig, budget: Duration) -> Reach {
    let Some(family) = ask_family(&Gateways::load()) else {
        return Reach::Offline("this machine has no default route".into());
    };
    let local = SocketAddr::new(family.unspecified(), 0);
    let mut queries = JoinSet::new();
    for server in config.servers.clone() {
        queries.spawn(async move {
            external::query(&server, local, budget, budget, DEFAULT_RTO)
                .await
                .is_ok()
        });
    }
    let answered = tokio::time::timeout(budget, async {
        while let Some(done) = queries.join_next().await {
            if done.unwrap_or(false) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    queries.abort_all();
    if answered {
        return Reach::Online;
    }
    Reach::Offline(format!(
        "none of the {} STUN server(s) from {} answered within {:.1} s",
        config.servers.len(),
        config.source,
        budget.as_secs_f64()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::config::{StunServer as Entry, StunSource};
    use crate::net::stun::StunServer;

    fn config(servers: &[String]) -> StunConfig {
        StunConfig {
            servers: servers
                .iter()
                .map(|s| Entry::parse(s, StunSource::Explicit).unwrap())
                .collect(),
            source: StunSource::Explicit,
            ..StunConfig::default()
        }
    }

    #[test]
    fn no_default_route_means_no_family_to_ask() {
        assert_eq!(ask_family(&Gateways::default()), None);
    }

    // Both cases need this machine to have a default route; a namespace without one is
    // covered by the tour's namespace test.
    #[tokio::test]
    async fn one_answer_is_online_and_silence_is_offline() {
        if ask_family(&Gateways::load()).is_none() {
            return;
        }
        let mut server = StunServer::start("127.0.0.1:0".parse().unwrap(), None)
            .await
            .unwrap();
        let live = server.local_addrs()[0].to_string();
        let budget = Duration::from_millis(300);
        let reach = check(&config(&["127.0.0.1:9".into(), live]), budget).await;
        assert_eq!(reach, Reach::Online);
        server.close().await;
        let Reach::Offline(why) = check(&config(&["127.0.0.1:9".into()]), budget).await else {
            panic!("a silent server is not online");
        };
        assert!(
            why.contains("none of the 1 STUN server(s) from --stun"),
            "{why}"
        );
    }
}
