//! Who may send as `@a.lab`, checked for real with the mail-auth crate (ring): SPF (RFC 7208:
//! is the connecting address one the sender's domain lists?), DKIM (RFC 6376 with ed25519,
//! RFC 8463: does the signature over the header fields and body verify with the key the
//! signer's domain publishes?) and DMARC (RFC 7489: does one of them pass *for the domain in
//! `From:`*, and what does that domain ask to do when neither does?).
//!
//! The receiving server does every DNS lookup itself, over the lab network, before it checks:
//! [`Lookup`] is how it asks, and what comes back fills the caches mail-auth reads. mail-auth
//! is given no resolver of its own, so a lookup the checks needed and were not given fails
//! (a temporary error in the result), never a query that did not cross the lab network.

use color_eyre::eyre::{Result, eyre};
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dkim::DkimSigner;
use mail_auth::dmarc::{Dmarc, Policy};
use mail_auth::spf::Spf;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, MX, MessageAuthenticator, Parameters,
    RecordSet, ResolverCache, SpfResult, Txt,
};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The header fields the signer signs (RFC 6376 §5.4.1 recommends these and more).
pub const SIGNED: [&str; 5] = ["From", "To", "Subject", "Date", "Message-ID"];

/// A domain's DKIM signing key: ed25519, made fresh for each run, its public half published
/// in DNS at `SELECTOR._domainkey.DOMAIN`.
pub struct DkimKey {
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl DkimKey {
    /// A new key pair.
    pub fn generate() -> Result<Self> {
        let pkcs8 = Ed25519Key::generate_pkcs8().map_err(|e| eyre!("DKIM key: {e}"))?;
        let public = Ed25519Key::from_pkcs8_der(&pkcs8).map_err(|e| eyre!("DKIM key: {e}"))?.public_key();
        Ok(DkimKey { pkcs8, public })
    }

    /// The TXT record that publishes the public key (RFC 6376 §3.6.1, RFC 8463 §4).
    pub fn record(&self) -> String {
        use base64::Engine;
        format!("v=DKIM1; k=ed25519; p={}", base64::engine::general_purpose::STANDARD.encode(&self.public))
    }

    /// The `DKIM-Signature:` header field (with its CR LF) that signs `message` for `domain`
    /// with `selector`; the signer puts it on top of the message.
    pub fn sign(&self, domain: &str, selector: &str, message: &[u8]) -> Result<String> {
        let key = Ed25519Key::from_pkcs8_der(&self.pkcs8).map_err(|e| eyre!("DKIM key: {e}"))?;
        let signature = DkimSigner::from_key(key)
            .domain(domain)
            .selector(selector)
            .headers(SIGNED)
            .sign(message)
            .map_err(|e| eyre!("DKIM: {e}"))?;
        Ok(signature.to_header())
    }
}

/// How the checking server asks DNS: the records of one type at a name, as their text (TXT),
/// `(preference, exchange)` (MX) or addresses (A). An empty answer is "no such record".
pub trait Lookup {
    fn txt(&mut self, name: &str) -> impl Future<Output = Result<Vec<String>>> + Send;
    fn mx(&mut self, name: &str) -> impl Future<Output = Result<Vec<(u16, String)>>> + Send;
    fn a(&mut self, name: &str) -> impl Future<Output = Result<Vec<Ipv4Addr>>> + Send;
}

/// A name as mail-auth's caches key it: lowercase, with its trailing dot.
fn fqdn(name: &str) -> Box<str> {
    let name = name.to_ascii_lowercase();
    if name.ends_with('.') { name.into() } else { format!("{name}.").into() }
}

/// What the lookups found, as mail-auth reads it.
struct Found<K, V>(Mutex<HashMap<K, V>>);

impl<K, V> Default for Found<K, V> {
    fn default() -> Self {
        Found(Mutex::new(HashMap::new()))
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for Found<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().ok()?.get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().ok()?.remove(name)
    }

    fn insert(&self, key: K, value: V, _: Instant) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(key, value);
        }
    }
}

/// Every record the checks of one message read.
#[derive(Default)]
struct Records {
    txt: Found<Box<str>, Txt>,
    mx: Found<Box<str>, RecordSet<MX>>,
    ipv4: Found<Box<str>, RecordSet<Ipv4Addr>>,
    ipv6: Found<Box<str>, RecordSet<Ipv6Addr>>,
    ptr: Found<IpAddr, RecordSet<Box<str>>>,
}

fn set<T>(items: Vec<T>) -> RecordSet<T> {
    RecordSet { rrset: Arc::from(items.into_boxed_slice()), dnssec_status: Default::default() }
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

impl Records {
    /// Looks up the TXT records at `name` and keeps the first that parses as `T`, or a "not
    /// found" mail-auth reads as the record's absence.
    async fn txt<T: TxtRecordParser + Into<Txt>>(
        &self,
        lookup: &mut impl Lookup,
        name: &str,
    ) -> Result<Option<String>> {
        let texts = lookup.txt(name).await?;
        let found = texts.iter().find_map(|t| T::parse(t.as_bytes()).ok().map(|parsed| (t.clone(), parsed)));
        let (text, value) = match found {
            Some((text, parsed)) => (Some(text), parsed.into()),
            None => (None, Txt::Error(not_found())),
        };
        self.txt.insert(fqdn(name), value, later());
        Ok(text)
    }

    /// SPF's lookups for `domain`: its record, then what its `mx` and `a` mechanisms name.
    async fn spf(&self, lookup: &mut impl Lookup, domain: &str) -> Result<()> {
        let Some(record) = self.txt::<Spf>(lookup, domain).await? else { return Ok(()) };
        for term in record.split_whitespace().skip(1) {
            let term = term.trim_start_matches(['+', '-', '~', '?']);
            let (mechanism, target) = term.split_once(':').unwrap_or((term, domain));
            let target = target.split('/').next().unwrap_or(target);
            match mechanism.to_ascii_lowercase().as_str() {
                "mx" => {
                    let exchanges = lookup.mx(target).await?;
                    let records: Vec<MX> = exchanges
                        .iter()
                        .map(|(preference, host)| MX { exchanges: Box::new([fqdn(host)]), preference: *preference })
                        .collect();
                    self.mx.insert(fqdn(target), set(records), later());
                    for (_, host) in exchanges {
                        let addresses = lookup.a(&host).await?;
                        self.ipv4.insert(fqdn(&host), set(addresses), later());
                    }
                }
                "a" => {
                    let addresses = lookup.a(target).await?;
                    self.ipv4.insert(fqdn(target), set(addresses), later());
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn not_found() -> mail_auth::Error {
    use mail_auth::hickory_resolver::proto::op::ResponseCode;
    mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(ResponseCode::NXDomain))
}

/// What the receiving server made of a message.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub spf: SpfResult,
    /// DKIM: the first signature's result (`None` when there was none).
    pub dkim: Option<DkimResult>,
    pub dmarc: DmarcResult,
    /// What the `From:` domain asks for when DMARC fails.
    pub policy: Policy,
    /// The `Authentication-Results:` header field (RFC 8601), with its CR LF.
    pub header: String,
    /// The domain in `From:`.
    pub from_domain: String,
}

impl Verdict {
    /// DMARC failed and the domain asks to reject: the server refuses the message.
    pub fn rejects(&self) -> bool {
        matches!(self.dmarc, DmarcResult::Fail(_)) && self.policy == Policy::Reject
    }

    /// One line: `spf=pass dkim=pass dmarc=pass`.
    pub fn summary(&self) -> String {
        format!(
            "spf={} dkim={} dmarc={}",
            spf_word(self.spf),
            self.dkim.as_ref().map_or("none", dkim_word),
            dmarc_word(&self.dmarc)
        )
    }
}

pub fn spf_word(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

pub fn dkim_word(result: &DkimResult) -> &'static str {
    match result {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

pub fn dmarc_word(result: &DmarcResult) -> &'static str {
    match result {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    }
}

/// The checks a receiving server (`hostname`) runs on `message`, which came from `ip`, which
/// said `helo` and `MAIL FROM:<mail_from>`: the lookups first, through `lookup`, then SPF, DKIM
/// and DMARC.
pub async fn check(
    lookup: &mut impl Lookup,
    hostname: &str,
    ip: Ipv4Addr,
    helo: &str,
    mail_from: &str,
    message: &[u8],
) -> Result<Verdict> {
    let parsed = AuthenticatedMessage::parse(message).ok_or_else(|| eyre!("the message does not parse"))?;
    let records = Records::default();
    let sender_domain = mail_from.rsplit_once('@').map_or(helo, |(_, d)| d).to_string();
    let from_domain = parsed.from().rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    // SPF: may `ip` send for the envelope sender's domain?
    records.spf(lookup, &sender_domain).await?;
    // DKIM: the key of each signature's signer.
    for header in &parsed.dkim_headers {
        let signature = &header.header;
        records.txt::<DomainKey>(lookup, &format!("{}._domainkey.{}", signature.s, signature.d)).await?;
    }
    // DMARC: the policy of the domain the reader sees in From:, and of each domain above it
    // (the tree walk of DMARCbis, RFC 9989 §4.10, which finds the organizational domain).
    let labels: Vec<&str> = from_domain.split('.').filter(|l| !l.is_empty()).collect();
    if labels.len() >= 2 {
        for first in 0..labels.len() {
            records.txt::<Dmarc>(lookup, &format!("_dmarc.{}", labels[first..].join("."))).await?;
        }
    }

    // No name servers: everything the checks read is what the lookups above found.
    let config = mail_auth::hickory_resolver::config::ResolverConfig::from_parts(None, vec![], vec![]);
    let authenticator = MessageAuthenticator::new(config, Default::default()).map_err(|e| eyre!("resolver: {e}"))?;
    // The parameters of one check, reading the records found.
    macro_rules! found {
        ($params:expr) => {
            Parameters::new($params)
                .with_txt_cache(&records.txt)
                .with_mx_cache(&records.mx)
                .with_ipv4_cache(&records.ipv4)
                .with_ipv6_cache(&records.ipv6)
                .with_ptr_cache(&records.ptr)
        };
    }
    let dkim = authenticator.verify_dkim(found!(&parsed)).await;
    let spf = SpfParameters::verify_mail_from(IpAddr::V4(ip), helo, hostname, mail_from);
    let spf = authenticator.verify_spf(found!(spf)).await;
    let dmarc = mail_auth::dmarc::verify::DmarcParameters::new(&parsed, &dkim, &sender_domain, &spf);
    let dmarc = authenticator.verify_dmarc(found!(dmarc)).await;
    let header = AuthenticationResults::new(hostname)
        .with_dkim_results(&dkim, parsed.from())
        .with_spf_mailfrom_result(&spf, IpAddr::V4(ip), mail_from, helo)
        .with_dmarc_result(&dmarc)
        .to_header();
    Ok(Verdict {
        spf: spf.result(),
        dkim: dkim.first().map(|d| d.result().clone()),
        dmarc: dmarc.result(),
        policy: dmarc.policy(),
        header,
        from_domain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DNS as a table (the lab's own lookups cross the lab network; here only the checks are
    /// tested).
    #[derive(Default)]
    struct Table {
        txt: HashMap<String, Vec<String>>,
        asked: Vec<String>,
    }

    impl Lookup for Table {
        async fn txt(&mut self, name: &str) -> Result<Vec<String>> {
            self.asked.push(format!("TXT {name}"));
            Ok(self.txt.get(name).cloned().unwrap_or_default())
        }
        async fn mx(&mut self, name: &str) -> Result<Vec<(u16, String)>> {
            self.asked.push(format!("MX {name}"));
            Ok(if name == "a.lab" { vec![(10, "mail.a.lab".into())] } else { vec![] })
        }
        async fn a(&mut self, name: &str) -> Result<Vec<Ipv4Addr>> {
            self.asked.push(format!("A {name}"));
            Ok(if name == "mail.a.lab" { vec![Ipv4Addr::new(192, 0, 2, 25)] } else { vec![] })
        }
    }

    fn table(key: &DkimKey) -> Table {
        let mut t = Table::default();
        t.txt.insert("a.lab".into(), vec!["v=spf1 mx -all".into(), "site-verification=x".into()]);
        t.txt.insert("lab._domainkey.a.lab".into(), vec![key.record()]);
        t.txt.insert("_dmarc.a.lab".into(), vec!["v=DMARC1; p=reject".into()]);
        t
    }

    const MESSAGE: &str = "From: Alice <alice@a.lab>\r\nTo: Bob <bob@b.lab>\r\nSubject: hi\r\n\
        Date: Mon, 07 Dec 2026 14:00:00 +0000\r\nMessage-ID: <1@a.lab>\r\n\r\nHi Bob,\r\n";

    #[tokio::test]
    async fn signed_from_the_listed_server_passes_all_three() {
        let key = DkimKey::generate().unwrap();
        assert!(key.record().starts_with("v=DKIM1; k=ed25519; p="));
        let signed = key.sign("a.lab", "lab", MESSAGE.as_bytes()).unwrap();
        assert!(signed.starts_with("DKIM-Signature: v=1; a=ed25519-sha256;"), "{signed}");
        let message = format!("{signed}{MESSAGE}");
        let mut t = table(&key);
        let ip = Ipv4Addr::new(192, 0, 2, 25);
        let v = check(&mut t, "mail.b.lab", ip, "mail.a.lab", "alice@a.lab", message.as_bytes()).await.unwrap();
        assert_eq!(v.summary(), "spf=pass dkim=pass dmarc=pass", "{v:?}");
        assert!(!v.rejects());
        assert!(v.header.starts_with("Authentication-Results: mail.b.lab;"), "{}", v.header);
        assert!(v.header.contains("dmarc=pass"), "{}", v.header);
        assert_eq!(
            t.asked,
            ["TXT a.lab", "MX a.lab", "A mail.a.lab", "TXT lab._domainkey.a.lab", "TXT _dmarc.a.lab", "TXT _dmarc.lab"]
        );

        // One changed byte of the body: the body hash no longer matches (mail-auth says
        // "neutral", as RFC 6376 §6.1.3 lets a verifier). SPF still passes, and DMARC with it
        // (aligned: a.lab in both).
        let tampered = message.replace("Hi Bob", "Hi Bib");
        let v =
            check(&mut table(&key), "mail.b.lab", ip, "mail.a.lab", "alice@a.lab", tampered.as_bytes()).await.unwrap();
        assert_eq!(v.summary(), "spf=pass dkim=neutral dmarc=pass", "{v:?}");
    }

    #[tokio::test]
    async fn a_forger_elsewhere_fails_and_the_policy_rejects() {
        let key = DkimKey::generate().unwrap();
        let mallory = Ipv4Addr::new(192, 0, 2, 66);
        let v = check(&mut table(&key), "mail.b.lab", mallory, "mallory.example", "alice@a.lab", MESSAGE.as_bytes())
            .await
            .unwrap();
        assert_eq!(v.summary(), "spf=fail dkim=none dmarc=fail", "{v:?}");
        assert!(v.rejects());
        // Signed by a key the domain does not publish: no better.
        let other = DkimKey::generate().unwrap();
        let message = format!("{}{MESSAGE}", other.sign("a.lab", "lab", MESSAGE.as_bytes()).unwrap());
        let v = check(&mut table(&key), "mail.b.lab", mallory, "mallory.example", "alice@a.lab", message.as_bytes())
            .await
            .unwrap();
        assert_eq!(v.summary(), "spf=fail dkim=fail dmarc=fail", "{v:?}");
        assert!(v.rejects());
    }
}
