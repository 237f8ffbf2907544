//! Resource policies end to end, through the real Dovecot and Postfix of the project's mail
//! stack: one daemon serves two rooms with different policies
//! (`tests/data/templates/policy-e2e/imipd.toml`), heidi and ivan send conflicting and
//! out-of-policy invitations over SMTP, and every answer is read back from the organisers'
//! INBOX over IMAP: its PARTSTAT, REQUEST-STATUS and the sentence in its text. The store's
//! view is checked last.
//!
//! | # | from  | to    | what                                   | answer                         |
//! |---|-------|-------|----------------------------------------|--------------------------------|
//! | A | heidi | room6 | D 10:00–11:00                          | ACCEPTED                       |
//! | B | ivan  | room6 | D 10:30–11:30 (after A)                | DECLINED 4.0, names heidi      |
//! | C | heidi | room7 | weekly from D 09:00                    | DECLINED 2.0, no recurring     |
//! | D | heidi | room7 | D 18:00–19:00                          | DECLINED 2.0, outside hours    |
//! | E | ivan  | room7 | D 18:00–19:00                          | TENTATIVE 2.0, held; heidi told |
//!
//! D is a weekday some weeks ahead, different between runs, so that leftovers of an
//! interrupted earlier run do not collide.

mod common;

use chrono::{Datelike, Duration as Days, Utc, Weekday};
use common::{MailStack, data, terminate, unique};
use imipd::calendar::{self, PartStat, SchedulingView};
use imipd::store::Store;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

/// One invitation of the table.
struct Invitation {
    uid: String,
    from: &'static str,
    name: &'static str,
    to: &'static str,
    start: String,
    end: String,
    rrule: &'static str,
    summary: &'static str,
}

impl Invitation {
    fn wire(&self) -> Vec<u8> {
        data("templates/policy-e2e/request.eml")
            .replace("{{UID}}", &self.uid)
            .replace("{{FROM_NAME}}", self.name)
            .replace("{{FROM}}", self.from)
            .replace("{{TO}}", self.to)
            .replace(
                "{{DTSTAMP}}",
                &Utc::now().format("%Y%m%dT%H%M%SZ").to_string(),
            )
            .replace("{{DTSTART}}", &self.start)
            .replace("{{DTEND}}", &self.end)
            .replace("{{RRULE}}", self.rrule)
            .replace("{{SUMMARY}}", self.summary)
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into_bytes()
    }

    async fn send(&self, stack: &MailStack) {
        stack.send(self.from, self.to, &self.wire()).await;
    }
}

/// What the organiser read in the answer.
#[derive(Debug)]
struct Answer {
    partstat: PartStat,
    request_status: String,
    comment: String,
    text: String,
}

/// Waits for the room's answer to `uid` in the organiser's INBOX and reads it.
async fn answer(stack: &MailStack, dir: &Path, invitation: &Invitation) -> Answer {
    let user = invitation.from.split('@').next().expect("an address");
    let raw = stack
        .wait_for_message(user, dir, WAIT, |raw| {
            imipd::mail::extract(raw).is_ok_and(|m| {
                m.sender.from.as_deref() == Some(invitation.to)
                    && m.parts.iter().any(|p| p.text.contains(&invitation.uid))
            })
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "no answer from {} to {} within {WAIT:?}",
                invitation.to, invitation.uid
            )
        });
    let found = imipd::mail::extract(&raw).expect("the answer is a message");
    let part = &found.parts[0];
    assert_eq!(part.method_param.as_deref(), Some("REPLY"));
    let objects = calendar::parse(&part.text).expect("the REPLY parses");
    let view = SchedulingView::new(&objects[0]).expect("a scheduling object");
    assert_eq!(view.uid.as_str(), invitation.uid);
    let attendees = &view.main().attendees;
    assert_eq!(attendees.len(), 1, "a REPLY carries only the room");
    assert_eq!(attendees[0].address.email(), invitation.to);
    let unfolded = part.text.replace("\r\n ", "");
    let line = |name: &str| {
        unfolded
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_default()
            .replace("\\,", ",")
            .replace("\\;", ";")
    };
    let message = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("the answer parses as mail");
    Answer {
        partstat: attendees[0].partstat.clone(),
        request_status: line("REQUEST-STATUS:"),
        comment: line("COMMENT:"),
        text: message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
    }
}

/// A weekday 3 to 8 weeks ahead, different between runs.
fn booking_day() -> chrono::NaiveDate {
    let spread = (std::process::id() as i64 + Utc::now().timestamp() / 60) % 35;
    let mut day = Utc::now().date_naive() + Days::days(21 + spread);
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day += Days::days(1);
    }
    day
}

fn at(day: chrono::NaiveDate, time: &str) -> String {
    format!("{}T{time}00Z", day.format("%Y%m%d"))
}

/// The daemon's configuration for both rooms, filled in for this stack.
fn config(stack: &MailStack, dir: &Path) -> std::path::PathBuf {
    let mut text = data("templates/policy-e2e/imipd.toml")
        .replace("{{HOST}}", stack.host())
        .replace("{{IMAPS}}", &stack.port("MAILSTACK_IMAPS_PORT").to_string())
        .replace(
            "{{SUBMISSION}}",
            &stack.port("MAILSTACK_SUBMISSION_PORT").to_string(),
        )
        .replace("{{CA}}", stack.ca());
    for room in ["room6", "room7"] {
        let file = dir.join(format!("{room}.password"));
        std::fs::write(&file, stack.password(room)).expect("write the password file");
        text = text.replace(
            &format!("{{{{{}_PW}}}}", room.to_ascii_uppercase()),
            &file.display().to_string(),
        );
    }
    let path = dir.join("imipd.toml");
    std::fs::write(&path, text).expect("write the daemon config");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn two_rooms_answer_two_organisers_by_their_own_policies() {
    let stack = MailStack::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let day = booking_day();
    let shown = day.format("%a %-d %b %Y").to_string();
    let invite = |from: &'static str,
                  name: &'static str,
                  to: &'static str,
                  start: &str,
                  end: &str,
                  rrule: &'static str,
                  summary: &'static str| Invitation {
        uid: unique(&format!("policy-{}", &summary[..1])),
        from,
        name,
        to,
        start: at(day, start),
        end: at(day, end),
        rrule,
        summary,
    };
    let a = invite(
        "heidi@example.test",
        "Heidi",
        "room6@example.test",
        "1000",
        "1100",
        "",
        "A Budget review",
    );
    let b = invite(
        "ivan@example.test",
        "Ivan",
        "room6@example.test",
        "1030",
        "1130",
        "",
        "B Sprint planning",
    );
    let c = invite(
        "heidi@example.test",
        "Heidi",
        "room7@example.test",
        "0900",
        "1000",
        "RRULE:FREQ=WEEKLY;COUNT=4\n",
        "C Weekly sync",
    );
    let d = invite(
        "heidi@example.test",
        "Heidi",
        "room7@example.test",
        "1800",
        "1900",
        "",
        "D Late review",
    );
    let e = invite(
        "ivan@example.test",
        "Ivan",
        "room7@example.test",
        "1800",
        "1900",
        "",
        "E Late demo",
    );

    let config = config(&stack, dir.path());
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("IMIPD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the daemon");

    for invitation in [&a, &c, &d, &e] {
        invitation.send(&stack).await;
    }
    // B must reach room 6 after A is booked: it is sent once A is answered.
    let answer_a = answer(&stack, dir.path(), &a).await;
    b.send(&stack).await;
    let answer_b = answer(&stack, dir.path(), &b).await;
    let answer_c = answer(&stack, dir.path(), &c).await;
    let answer_d = answer(&stack, dir.path(), &d).await;
    let answer_e = answer(&stack, dir.path(), &e).await;
    let notice = stack
        .wait_for_message("heidi", dir.path(), WAIT, |raw| {
            let text = String::from_utf8_lossy(raw);
            text.contains("Subject: Approval needed: E Late demo (Room 7)") && text.contains(&e.uid)
        })
        .await;
    let status = terminate(&mut daemon, Duration::from_secs(20));
    assert!(status.success(), "the daemon stops cleanly: {status}");

    // A: room 6 is free.
    assert_eq!(answer_a.partstat, PartStat::Accepted, "{answer_a:?}");
    assert_eq!(answer_a.request_status, "", "{answer_a:?}");
    assert!(
        answer_a.text.contains("Room 6 is on the ground floor."),
        "{answer_a:?}"
    );
    // B: room 6 is taken by heidi's booking, and the room says so (organizer_info).
    assert_eq!(answer_b.partstat, PartStat::Declined, "{answer_b:?}");
    assert_eq!(
        answer_b.request_status, "4.0;Event conflict. Date/time is busy.",
        "{answer_b:?}"
    );
    let conflict = format!(
        "declined: conflicts with an existing booking on {shown} 10:00–11:00 UTC, organised by heidi@example.test"
    );
    assert_eq!(answer_b.comment, conflict, "{answer_b:?}");
    assert!(answer_b.text.contains(&conflict), "{answer_b:?}");
    assert!(
        answer_b.text.contains("Room 6 is on the ground floor."),
        "{answer_b:?}"
    );
    // C: room 7 takes no recurring meetings.
    assert_eq!(answer_c.partstat, PartStat::Declined, "{answer_c:?}");
    assert_eq!(answer_c.request_status, "2.0;Success.", "{answer_c:?}");
    let no_series = "declined: this resource does not accept recurring meetings";
    assert_eq!(answer_c.comment, no_series, "{answer_c:?}");
    assert!(answer_c.text.contains(no_series), "{answer_c:?}");
    // D: outside room 7's hours, and heidi may not ask out of policy.
    let hours = format!(
        "declined: bookings are accepted only on Mon, Tue, Wed, Thu, Fri 08:00–17:00 UTC; {shown} 18:00–19:00 UTC is outside"
    );
    assert_eq!(answer_d.partstat, PartStat::Declined, "{answer_d:?}");
    assert_eq!(answer_d.request_status, "2.0;Success.", "{answer_d:?}");
    assert_eq!(answer_d.comment, hours, "{answer_d:?}");
    assert!(answer_d.text.contains(&hours), "{answer_d:?}");
    // E: the same time from ivan, who may ask out of policy: held for heidi, the delegate.
    let held = format!(
        "held for approval: the request is out of policy (bookings are accepted only on Mon, Tue, Wed, Thu, Fri 08:00–17:00 UTC; {shown} 18:00–19:00 UTC is outside); a delegate of this resource decides"
    );
    assert_eq!(answer_e.partstat, PartStat::Tentative, "{answer_e:?}");
    assert_eq!(answer_e.request_status, "2.0;Success.", "{answer_e:?}");
    assert_eq!(answer_e.comment, held, "{answer_e:?}");
    assert!(answer_e.text.contains(&held), "{answer_e:?}");
    let notice = notice.expect("heidi, the delegate, is told about the held request");
    let notice = String::from_utf8_lossy(&notice);
    assert!(
        notice.contains("From: \"Room 7\" <room7@example.test>")
            || notice.contains("From: Room 7 <room7@example.test>"),
        "{notice}"
    );
    assert!(
        notice.contains("Auto-Submitted: auto-generated"),
        "{notice}"
    );

    // The store's view.
    let store = Store::open(&dir.path().join("store")).expect("the daemon released the store");
    let stored = |room: &str, invitation: &Invitation| {
        store
            .object(room, &invitation.uid)
            .expect("read the store")
            .unwrap_or_else(|| panic!("{} is stored for {room}", invitation.uid))
    };
    let room6 = "room6@example.test";
    let room7 = "room7@example.test";
    assert!(stored(room6, &a).ical.contains("PARTSTAT=ACCEPTED"));
    assert!(stored(room6, &a).ical.contains("SUMMARY:A Budget review"));
    assert!(stored(room6, &b).ical.contains("PARTSTAT=DECLINED"));
    let busy6 = store.busy(room6, 0, i64::MAX).expect("busy reads");
    assert_eq!(
        busy6
            .iter()
            .filter(|e| e.uid == a.uid || e.uid == b.uid)
            .count(),
        1,
        "only heidi's booking occupies room 6: {busy6:?}"
    );
    let held_copy = stored(room7, &e);
    assert!(
        held_copy.ical.contains("PARTSTAT=TENTATIVE"),
        "{}",
        held_copy.ical
    );
    assert!(
        held_copy.ical.contains("SUMMARY:Ivan"),
        "{}",
        held_copy.ical
    );
    assert!(!held_copy.ical.contains("Late demo"), "{}", held_copy.ical);
    assert!(!held_copy.ical.contains("555-0100"), "{}", held_copy.ical);
    let original = held_copy.original.expect("room 7 keeps the original");
    assert!(original.contains("SUMMARY:E Late demo"), "{original}");
    assert!(
        original.contains("DESCRIPTION:Dial-in 555-0100"),
        "{original}"
    );
    assert!(
        store.outbox().expect("read the outbox").is_empty(),
        "every answer and notice left the outbox"
    );
}
