//! Where the lab server puts the mail it accepts: in memory, the last [`Mailbox::CAPACITY`]
//! messages, in INBOX and the folders an IMAP client makes, each with its UID and flags.
//! Nothing is relayed anywhere. The POP3 and IMAP labs read mail from here.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One accepted message, with its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The queue id the 250 reply named (`queued as 00000001`).
    pub id: String,
    /// The envelope sender from `MAIL FROM:<...>`; empty for the null path `<>`.
    pub reverse_path: String,
    /// The envelope recipients from each accepted `RCPT TO:<...>`.
    pub forward_paths: Vec<String>,
    /// The name the client gave in EHLO or HELO.
    pub client_domain: String,
    /// Where the client connected from.
    pub peer: SocketAddr,
    /// When the server accepted it.
    pub received: SystemTime,
    /// The message text after dot-stuffing was undone, with the server's `Received:` line on top.
    pub content: Vec<u8>,
}

impl Mail {
    /// The value of the first header field with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        super::message::header_fields(&self.content)
            .into_iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }
}

/// IMAP's system flags (RFC 9051 §2.3.2), as bits of [`Kept::flags`].
pub mod flag {
    pub const SEEN: u8 = 1;
    pub const ANSWERED: u8 = 2;
    pub const FLAGGED: u8 = 4;
    pub const DELETED: u8 = 8;
    pub const DRAFT: u8 = 16;
    /// Each flag and its name.
    pub const NAMES: [(u8, &str); 5] = [
        (SEEN, "\\Seen"),
        (ANSWERED, "\\Answered"),
        (FLAGGED, "\\Flagged"),
        (DELETED, "\\Deleted"),
        (DRAFT, "\\Draft"),
    ];

    /// The flag with this name (case-insensitive), if it is one of these.
    pub fn named(name: &str) -> Option<u8> {
        NAMES.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)).map(|(bit, _)| *bit)
    }

    /// `(\Seen \Flagged)`.
    pub fn list(flags: u8) -> String {
        let names: Vec<&str> = NAMES.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| *n).collect();
        format!("({})", names.join(" "))
    }
}

/// A lab account: its name, its password, and the address its mail comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub user: &'static str,
    pub password: &'static str,
    pub address: &'static str,
}

/// The lab's accounts, for POP3, IMAP and SMTP AUTH (shown on screen: there is nothing secret
/// about them): bob reads mail, alice submits it.
pub const ACCOUNTS: [Account; 2] = [
    Account { user: "bob", password: "lab", address: crate::labs::smtp::client::RECIPIENT },
    Account { user: "alice", password: "lab", address: crate::labs::smtp::client::SENDER },
];

/// The sender of the welcome message.
pub const POSTMASTER: &str = "postmaster@protolab.test";

/// The folder mail is delivered to.
pub const INBOX: &str = "INBOX";

/// A message as the mailbox keeps it: in a folder, with its IMAP UID and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub mail: Mail,
    pub folder: String,
    /// Unique in its folder, and larger than every UID before it there (RFC 9051 §2.3.1.1).
    pub uid: u32,
    /// Bits of [`flag`].
    pub flags: u8,
}

/// A folder's UID numbering.
#[derive(Debug, Clone, Copy)]
struct Numbering {
    uid_validity: u32,
    next_uid: u32,
}

/// A message of a folder listing: its UID and flags, not its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub uid: u32,
    pub flags: u8,
}

/// A folder as one moment saw it (no message text is copied: [`Mailbox::get`] has it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderView {
    pub uid_validity: u32,
    pub uid_next: u32,
    /// Its messages, oldest (smallest UID) first.
    pub messages: Vec<Listed>,
}

#[derive(Debug)]
struct Store {
    /// Oldest first.
    kept: VecDeque<Kept>,
    /// Messages ever delivered: the next queue id.
    delivered: u64,
    folders: std::collections::BTreeMap<String, Numbering>,
    /// Messages kept at most; the oldest go first.
    capacity: usize,
}

/// A bounded, shared, in-memory mailbox with folders. Cheap to clone: clones share the same
/// mail. Every change is announced to [`Mailbox::changes`] (an IMAP client in IDLE hears it).
#[derive(Debug, Clone)]
pub struct Mailbox {
    store: Arc<Mutex<Store>>,
    version: Arc<tokio::sync::watch::Sender<u64>>,
    /// The domain whose mail it keeps, if not the lab server's (`b.lab` on the mail lab's
    /// mail.b.lab): an account's mail is then the mail for its name at this domain.
    domain: Option<Arc<str>>,
}

impl Default for Mailbox {
    fn default() -> Self {
        let mut folders = std::collections::BTreeMap::new();
        folders.insert(INBOX.to_string(), Numbering { uid_validity: 1, next_uid: 1 });
        Mailbox {
            store: Arc::new(Mutex::new(Store {
                kept: VecDeque::new(),
                delivered: 0,
                folders,
                capacity: Self::CAPACITY,
            })),
            version: Arc::new(tokio::sync::watch::Sender::new(0)),
            domain: None,
        }
    }
}

impl Mailbox {
    /// Messages kept in all folders unless told otherwise; the oldest go first.
    pub const CAPACITY: usize = 100;

    /// An empty mailbox that keeps up to `capacity` messages (a benchmark's 10 000).
    pub fn with_capacity(capacity: usize) -> Self {
        let mailbox = Mailbox::default();
        mailbox.lock().capacity = capacity.max(1);
        mailbox
    }

    /// An empty mailbox for `domain`'s mail: bob's is the mail for bob@`domain`.
    pub fn for_domain(domain: &str) -> Self {
        Mailbox { domain: Some(domain.into()), ..Mailbox::default() }
    }

    /// The address whose mail an account with `address` reads here.
    fn here(&self, address: &str) -> String {
        match (&self.domain, address.split_once('@')) {
            (Some(domain), Some((user, _))) => format!("{user}@{domain}"),
            _ => address.to_string(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Something changed: whoever waits on [`Mailbox::changes`] wakes.
    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// A receiver that sees a new value after every change.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// A fresh queue id, unique within this mailbox.
    pub fn next_id(&self) -> String {
        let mut store = self.lock();
        store.delivered += 1;
        format!("{:08X}", store.delivered)
    }

    /// Keeps a message in INBOX, dropping the oldest past the capacity ([`Mailbox::CAPACITY`]).
    pub fn deliver(&self, mail: Mail) {
        self.keep(mail, INBOX, 0);
        self.changed();
    }

    fn keep(&self, mail: Mail, folder: &str, flags: u8) -> Option<u32> {
        let mut store = self.lock();
        let numbering = store.folders.get_mut(folder)?;
        let uid = numbering.next_uid;
        numbering.next_uid += 1;
        store.kept.push_back(Kept { mail, folder: folder.to_string(), uid, flags });
        while store.kept.len() > store.capacity {
            store.kept.pop_front();
        }
        Some(uid)
    }

    /// Every message in INBOX, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        self.lock().kept.iter().filter(|k| k.folder == INBOX).map(|k| k.mail.clone()).collect()
    }

    /// The messages in INBOX for one recipient (case-insensitive), oldest first.
    pub fn for_recipient(&self, address: &str) -> Vec<Mail> {
        let address = &self.here(address);
        let store = self.lock();
        store
            .kept
            .iter()
            .filter(|k| k.folder == INBOX && k.mail.forward_paths.iter().any(|p| p.eq_ignore_ascii_case(address)))
            .map(|k| k.mail.clone())
            .collect()
    }

    /// Removes the messages in INBOX with these queue ids (POP3's UPDATE); returns how many went.
    pub fn remove(&self, ids: &[String]) -> usize {
        let removed = {
            let mut store = self.lock();
            let before = store.kept.len();
            store.kept.retain(|k| !(k.folder == INBOX && ids.contains(&k.mail.id)));
            before - store.kept.len()
        };
        if removed > 0 {
            self.changed();
        }
        removed
    }

    /// The newest message in INBOX.
    pub fn latest(&self) -> Option<Mail> {
        self.lock().kept.iter().rev().find(|k| k.folder == INBOX).map(|k| k.mail.clone())
    }

    /// Messages in INBOX.
    pub fn len(&self) -> usize {
        self.lock().kept.iter().filter(|k| k.folder == INBOX).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When `account`'s INBOX is empty, a first message, as a mail system leaves one in a new
    /// account: so the POP3 and IMAP labs have something to fetch before the SMTP tab sent
    /// anything.
    pub fn welcome(&self, account: Account, now: SystemTime) {
        let address = account.address;
        if !self.for_recipient(address).is_empty() {
            return;
        }
        let id = self.next_id();
        let unix = now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let date = super::message::rfc5322_date(unix);
        let content = format!(
            "From: protolab <{POSTMASTER}>\r\nTo: Bob <{address}>\r\nSubject: Welcome to your lab mailbox\r\n\
             Date: {date}\r\nMessage-ID: <{id}.welcome@protolab.test>\r\n\r\nHi Bob,\r\n\r\n\
             the lab left this message because your mailbox was empty.\r\n\
             Send one on the SMTP tab, then fetch it on the POP3 or IMAP tab: it has the same Message-ID.\r\n\
             .This line starts with a dot, so the server sends it with two (dot-stuffing).\r\n"
        );
        self.deliver(Mail {
            id,
            reverse_path: POSTMASTER.into(),
            forward_paths: vec![address.into()],
            client_domain: "protolab.test".into(),
            peer: SocketAddr::from(([127, 0, 0, 1], 0)),
            received: now,
            content: content.into_bytes(),
        });
    }

    /// The folders' names, INBOX first.
    pub fn folders(&self) -> Vec<String> {
        let store = self.lock();
        let mut names: Vec<String> = store.folders.keys().cloned().collect();
        names.sort_by_key(|n| (n != INBOX, n.clone()));
        names
    }

    /// The folder named `name` (INBOX in any case), as it is now; in INBOX only mail for
    /// `address`.
    pub fn view(&self, name: &str, address: &str) -> Option<FolderView> {
        let address = &self.here(address);
        let name = canonical(name);
        let store = self.lock();
        let numbering = store.folders.get(&name)?;
        let messages = store
            .kept
            .iter()
            .filter(|k| k.folder == name)
            .filter(|k| name != INBOX || k.mail.forward_paths.iter().any(|p| p.eq_ignore_ascii_case(address)))
            .map(|k| Listed { uid: k.uid, flags: k.flags })
            .collect();
        Some(FolderView { uid_validity: numbering.uid_validity, uid_next: numbering.next_uid, messages })
    }

    /// The message of `folder` with this UID, text and all.
    pub fn get(&self, folder: &str, uid: u32) -> Option<Kept> {
        let folder = canonical(folder);
        self.lock().kept.iter().find(|k| k.folder == folder && k.uid == uid).cloned()
    }

    /// Makes a folder; `false` if it exists.
    pub fn create(&self, name: &str) -> bool {
        let name = canonical(name);
        let created = {
            let mut store = self.lock();
            if store.folders.contains_key(&name) {
                return false;
            }
            let uid_validity = store.folders.len() as u32 + 1;
            store.folders.insert(name, Numbering { uid_validity, next_uid: 1 });
            true
        };
        self.changed();
        created
    }

    /// Sets, adds or removes flags of the messages of `folder` with these UIDs: `apply` maps
    /// old flags to new.
    pub fn set_flags(&self, folder: &str, uids: &[u32], apply: impl Fn(u8) -> u8) {
        let folder = canonical(folder);
        let mut any = false;
        {
            let mut store = self.lock();
            for k in store.kept.iter_mut().filter(|k| k.folder == folder && uids.contains(&k.uid)) {
                let new = apply(k.flags);
                any |= new != k.flags;
                k.flags = new;
            }
        }
        if any {
            self.changed();
        }
    }

    /// Copies the messages of `from` with these UIDs to `to` (flags kept); their new UIDs, in
    /// order, or `None` if `to` does not exist.
    pub fn copy(&self, from: &str, uids: &[u32], to: &str) -> Option<Vec<(u32, u32)>> {
        let (from, to) = (canonical(from), canonical(to));
        let picked: Vec<Kept> = {
            let store = self.lock();
            store.folders.get(&to)?;
            store.kept.iter().filter(|k| k.folder == from && uids.contains(&k.uid)).cloned().collect()
        };
        let mut out = Vec::new();
        for k in picked {
            if let Some(uid) = self.keep(k.mail, &to, k.flags) {
                out.push((k.uid, uid));
            }
        }
        self.changed();
        Some(out)
    }

    /// Removes the messages of `folder` marked `\Deleted` (only those with these UIDs, if
    /// given); their UIDs.
    pub fn expunge(&self, folder: &str, only: Option<&[u32]>) -> Vec<u32> {
        let folder = canonical(folder);
        let gone: Vec<u32> = {
            let mut store = self.lock();
            let doomed = |k: &Kept| {
                k.folder == folder && k.flags & flag::DELETED != 0 && only.is_none_or(|u| u.contains(&k.uid))
            };
            let gone = store.kept.iter().filter(|k| doomed(k)).map(|k| k.uid).collect();
            store.kept.retain(|k| !doomed(k));
            gone
        };
        if !gone.is_empty() {
            self.changed();
        }
        gone
    }
}

/// For tests: a mailbox holding `n` messages from alice to bob, the `i`th message's text
/// `text(i)`.
#[cfg(test)]
pub fn filled(n: usize, text: impl Fn(usize) -> String) -> Mailbox {
    let mb = Mailbox::default();
    for i in 0..n {
        mb.deliver(Mail {
            id: mb.next_id(),
            reverse_path: "alice@client.lab".into(),
            forward_paths: vec![ACCOUNTS[0].address.into()],
            client_domain: "client.lab".into(),
            peer: "127.0.0.1:1".parse().unwrap(),
            received: SystemTime::UNIX_EPOCH,
            content: text(i).into_bytes(),
        });
    }
    mb
}

/// A folder's name as kept: INBOX in any case is INBOX (RFC 9051 §5.1).
pub fn canonical(name: &str) -> String {
    if name.eq_ignore_ascii_case(INBOX) { INBOX.to_string() } else { name.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(id: String, to: &str) -> Mail {
        Mail {
            id,
            reverse_path: "a@b".into(),
            forward_paths: vec![to.into()],
            client_domain: "c".into(),
            peer: "127.0.0.1:1".parse().unwrap(),
            received: SystemTime::UNIX_EPOCH,
            content: b"Subject: Hi\r\n\r\nbody\r\n".to_vec(),
        }
    }

    #[test]
    fn keeps_the_last_hundred() {
        let mb = Mailbox::default();
        for i in 0..105 {
            mb.deliver(mail(mb.next_id(), if i % 2 == 0 { "bob@protolab.test" } else { "carol@protolab.test" }));
        }
        assert_eq!(mb.len(), Mailbox::CAPACITY);
        assert_eq!(mb.messages()[0].id, "00000006");
        assert_eq!(mb.latest().unwrap().id, "00000069");
        assert_eq!(mb.for_recipient("BOB@protolab.test").len(), 50);
        assert_eq!(mb.latest().unwrap().header("subject").as_deref(), Some("Hi"));
    }

    #[test]
    fn folders_uids_flags_and_the_news_of_each_change() {
        let mb = Mailbox::default();
        let mut changes = mb.changes();
        mb.deliver(mail(mb.next_id(), "bob@protolab.test"));
        mb.deliver(mail(mb.next_id(), "carol@protolab.test"));
        mb.deliver(mail(mb.next_id(), "bob@protolab.test"));
        assert!(changes.has_changed().unwrap());
        changes.borrow_and_update();
        let inbox = mb.view("inbox", "bob@protolab.test").unwrap();
        assert_eq!(inbox.messages.iter().map(|k| k.uid).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(inbox.uid_next, 4);
        assert!(mb.create("Archive") && !mb.create("Archive"));
        assert_eq!(mb.folders(), ["INBOX", "Archive"]);
        mb.set_flags(INBOX, &[1], |f| f | flag::SEEN | flag::DELETED);
        assert_eq!(mb.copy(INBOX, &[1, 3], "Archive"), Some(vec![(1, 1), (3, 2)]));
        assert_eq!(mb.view("Archive", "").unwrap().messages[0].flags, flag::SEEN | flag::DELETED);
        assert_eq!(mb.expunge(INBOX, None), [1]);
        assert_eq!(mb.view(INBOX, "bob@protolab.test").unwrap().messages.len(), 1);
        assert!(changes.has_changed().unwrap());
        assert_eq!(flag::list(flag::SEEN | flag::FLAGGED), "(\\Seen \\Flagged)");
        assert_eq!(mb.copy(INBOX, &[3], "Nope"), None);
    }
}
