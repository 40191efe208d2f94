//! A real Dovecot (POP3 and IMAP) for the interop tests, started on free loopback ports with
//! its own configuration in a temporary directory, bob's Maildir holding one message. Skipped
//! (`None`) where Dovecot is not installed or the test is not root (Dovecot serves mail as a
//! user of its own, here nobody). `stop` ends it; so does dropping it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The password of bob at Dovecot.
pub const PASSWORD: &str = "s3cret";

pub struct Dovecot {
    pub dir: PathBuf,
    pub pop3: SocketAddr,
    pub imap: SocketAddr,
    /// With TLS: POP3 over TLS from the first byte (995's role) and IMAP's (993's).
    pub pop3s: SocketAddr,
    pub imaps: SocketAddr,
    conf: PathBuf,
    child: tokio::process::Child,
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

impl Dovecot {
    /// Dovecot serving bob, whose INBOX holds `message`.
    pub async fn start(message: &str) -> Option<Dovecot> {
        Dovecot::start_with(message, None).await
    }

    /// The same with TLS: `cert` and `key` (PEM files) for STLS, STARTTLS, and the TLS ports;
    /// no login in the clear (Dovecot says LOGINDISABLED before STARTTLS).
    pub async fn start_tls(message: &str, cert: &std::path::Path, key: &std::path::Path) -> Option<Dovecot> {
        Dovecot::start_with(message, Some((cert, key))).await
    }

    async fn start_with(message: &str, tls: Option<(&std::path::Path, &std::path::Path)>) -> Option<Dovecot> {
        let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n");
        if !root || std::process::Command::new("dovecot").arg("--version").output().is_err() {
            eprintln!("dovecot is not installed, or this is not root: the Dovecot interop test is skipped");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("protolab-dovecot-{}-{}", std::process::id(), rand_suffix()));
        let _ = std::fs::remove_dir_all(&dir);
        let maildir = dir.join("home/bob/Maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        std::fs::write(maildir.join("new/1.lab"), message).unwrap();
        let owned = ["", "/bob", "/bob/Maildir", "/bob/Maildir/new", "/bob/Maildir/cur", "/bob/Maildir/tmp"];
        for entry in owned.iter().map(|p| format!("home{p}")).chain(["home/bob/Maildir/new/1.lab".into()]) {
            std::os::unix::fs::chown(dir.join(entry), Some(65534), Some(65534)).unwrap();
        }
        let (pop3, imap, pop3s, imaps) = (free_port(), free_port(), free_port(), free_port());
        let d = dir.display();
        let (ssl, tls_ports) = match tls {
            None => ("ssl = no\ndisable_plaintext_auth = no\n".to_string(), (0, 0)),
            Some((cert, key)) => (
                format!(
                    "ssl = yes\nssl_cert = <{}\nssl_key = <{}\nssl_min_protocol = TLSv1.2\ndisable_plaintext_auth = yes\n",
                    cert.display(),
                    key.display()
                ),
                (pop3s.port(), imaps.port()),
            ),
        };
        std::fs::write(dir.join("passwd"), format!("bob:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let conf = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/log\nprotocols = pop3 imap\n\
             listen = 127.0.0.1\n{ssl}auth_mechanisms = plain\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home={d}/home/%u\n}}\n\
             mail_location = maildir:~/Maildir\n\
             service pop3-login {{\n  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {}\n  }}\n  \
             inet_listener pop3s {{\n    address = 127.0.0.1\n    port = {}\n  }}\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {}\n  }}\n  \
             inet_listener imaps {{\n    address = 127.0.0.1\n    port = {}\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n",
            pop3.port(),
            tls_ports.0,
            imap.port(),
            tls_ports.1
        );
        let conf_path = dir.join("dovecot.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = tokio::process::Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .kill_on_drop(true)
            .spawn()
            .expect("dovecot starts");
        let listening: Vec<SocketAddr> = if tls.is_some() { vec![pop3, imap, pop3s, imaps] } else { vec![pop3, imap] };
        let up = async {
            for addr in listening {
                while tokio::net::TcpStream::connect(addr).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let dovecot = Dovecot { dir, pop3, imap, pop3s, imaps, conf: conf_path, child };
        if tokio::time::timeout(Duration::from_secs(30), up).await.is_err() {
            panic!("dovecot does not listen:\n{}", dovecot.log());
        }
        Some(dovecot)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Messages in bob's Maildir (new and cur).
    pub fn messages(&self) -> usize {
        let maildir = self.dir.join("home/bob/Maildir");
        ["new", "cur"].iter().flat_map(|sub| std::fs::read_dir(maildir.join(sub)).unwrap()).count()
    }

    pub async fn stop(mut self) {
        let _ = std::process::Command::new("dovecot").arg("-c").arg(&self.conf).arg("stop").status();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64)
}
