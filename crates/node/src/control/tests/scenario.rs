//! The end-to-end scenario of a private server, also the fixed record set
//! of the determinism tests.

use messaging_proto::limits::MAX_CLOCK_SKEW_MS;
use messaging_proto::{Role, Visibility};

use super::*;
use crate::control::DepartureKind;

/// The scenario's people: the owner is user 1.
fn b() -> Identity {
    user(2)
}
fn c() -> Identity {
    user(3)
}
fn d() -> Identity {
    user(4)
}
fn e() -> Identity {
    user(5)
}
fn f() -> Identity {
    user(6)
}

/// The owner creates a private server and issues an invite; B joins with
/// it; C's invite has expired; the owner makes B a moderator; D joins; B
/// kicks D with a cut; the owner bans E pre-emptively and E's join is
/// refused; F joins and becomes an admin; the owner rotates the key in two
/// parts, and F's concurrent rotation is refused; the owner grants B the
/// new key.
///
/// Every allowed record changes the state (the determinism tests rely on
/// it): the announced invite allows 10 uses while the signed one says 5,
/// so even the announcement leaves a trace.
pub(super) fn scenario() -> Scene {
    let mut scene = Scene::new(Visibility::Private);
    scene.ok(&owner(), issue(1, None, Some(10)));
    let invite = scene.invite(&owner(), 1, None, Some(5), 1);
    scene.ok(&b(), join(Some(invite.clone()), "B"));
    let expired = scene.invite(&owner(), 2, Some(T0 - MAX_CLOCK_SKEW_MS), None, 1);
    assert_eq!(
        scene.denied(&c(), join(Some(expired), "C")),
        Denied::InviteExpired
    );
    scene.ok(&owner(), grant(&b(), Role::Moderator));
    scene.ok(&d(), join(Some(invite.clone()), "D"));
    scene.ok(&owner(), create_channel(1, "random"));
    let log = scene.general_log();
    scene.ok(&b(), kick(&d(), vec![cut(log, 7)]));
    scene.ok(&owner(), ban(&e(), Vec::new()));
    assert_eq!(
        scene.denied(&e(), join(Some(invite.clone()), "E")),
        Denied::Banned
    );
    scene.ok(&f(), join(Some(invite), "F"));
    scene.ok(&owner(), grant(&f(), Role::Admin));
    scene.ok(&owner(), rotation(2, 0, 2, 1));
    assert_eq!(
        scene.denied(&f(), rotation(2, 0, 1, 2)),
        Denied::ConcurrentRotation
    );
    scene.ok(&owner(), rotation(2, 1, 2, 3));
    scene.ok(&owner(), key_grant(2, &b()));
    scene
}

#[test]
fn a_private_server_scenario() {
    let scene = scenario();
    let state = &scene.state;
    let log = scene.general_log();

    let member_b = state.member(&b().user_id()).unwrap();
    assert_eq!(member_b.role, Role::Moderator);
    assert_eq!(member_b.display_name, "B");
    assert_eq!(member_b.invite, Some(invite_id(1)));
    let invite = state.invite(&invite_id(1)).unwrap();
    assert_eq!(invite.issuer, Some(owner().user_id()));
    assert_eq!(invite.max_uses, Some(10));
    assert_eq!(invite.uses, 3);

    assert!(!state.is_member(&c().user_id()));
    assert!(state.invite(&invite_id(2)).is_none());

    let departure = state.departure(&d().user_id()).unwrap();
    assert_eq!(departure.kind, DepartureKind::Kicked);
    assert_eq!(departure.by, b().user_id());
    assert!(state.may_post(&d().user_id(), &log, 1));
    assert!(state.may_post(&d().user_id(), &log, 7));
    assert!(!state.may_post(&d().user_id(), &log, 8));

    assert!(state.is_banned(&e().user_id()));
    assert!(!state.is_member(&e().user_id()));
    assert!(state.departure(&e().user_id()).is_none());

    assert_eq!(state.role_of(&f().user_id()), Some(Role::Admin));
    assert_eq!(state.current_epoch(), 2);
    let rotation = state.rotation(2).unwrap();
    assert_eq!(rotation.by, owner().user_id());
    assert!(rotation.complete());
    assert_eq!(rotation.sealed_keys.len(), 4);
    assert_eq!(state.key_grants().len(), 1);

    let members: Vec<_> = state.members().map(|member| member.user).collect();
    let mut expected = vec![owner().user_id(), b().user_id(), f().user_id()];
    expected.sort();
    assert_eq!(members, expected);

    let reasons: Vec<_> = state
        .rejected()
        .iter()
        .map(|(_, denied)| denied.code())
        .collect();
    assert_eq!(
        reasons,
        [
            "permission.invite_expired",
            "permission.banned",
            "permission.concurrent_rotation"
        ]
    );
    assert_eq!(
        state.last_applied(),
        scene.records.last().map(ControlRecord::order_key)
    );
}
