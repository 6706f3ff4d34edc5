//! One test per rule of the fold: the allowed case and each denial.

use messaging_proto::limits::MAX_CLOCK_SKEW_MS;
use messaging_proto::{
    BootstrapPeer, ControlEvent, CreateServer, EntryHash, Role, ServerId, ServerProfile, Visibility,
};

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::control::{DepartureKind, FoldError};

// ---- genesis ----------------------------------------------------------

#[test]
fn genesis_makes_the_owner_the_general_channel_and_epoch_one() {
    let scene = Scene::new(Visibility::Private);
    let state = &scene.state;
    let owner = owner().user_id();
    assert_eq!(state.server_id(), scene.server);
    assert_eq!(state.owner(), owner);
    assert_eq!(state.control_log(), scene.control_log);
    assert_eq!(state.profile().name, "Test server");
    assert_eq!(state.profile().description, "for tests");
    assert_eq!(state.profile().visibility, Visibility::Private);
    assert_eq!(state.current_epoch(), 1);
    assert_eq!(state.role_of(&owner), Some(Role::Owner));
    let member = state.member(&owner).unwrap();
    assert_eq!(member.display_name, "owner");
    assert_eq!(member.joined_at_ms, T0);
    assert_eq!(member.invite, None);
    let general = state.channel_by_name("GENERAL").unwrap();
    assert_eq!(general.id, scene.general);
    assert_eq!(general.name, "general");
    assert_eq!(general.topic, "");
    assert_eq!(general.log, scene.server.channel_log(&scene.general));
    assert_eq!(general.created_by, owner);
    assert!(!general.deleted);
    assert_eq!(state.channel_by_log(&general.log).unwrap().id, general.id);
    assert_eq!(state.channels().count(), 1);
    assert!(state.bootstrap_peers().is_empty());
    assert!(state.rejected().is_empty());
    assert_eq!(state.last_applied(), None);
}

#[test]
fn genesis_must_be_create_server() {
    let scene = Scene::new(Visibility::Private);
    let mut not_genesis = scene.genesis.clone();
    not_genesis.event = leave(Vec::new());
    let error = ServerState::fold(scene.server, &not_genesis, scene.control_log, &[]).unwrap_err();
    assert_eq!(error, FoldError::NotAGenesis { kind: "leave" });
    assert_eq!(error.code(), "control.not_a_genesis");
}

#[test]
fn genesis_hash_must_be_the_server_id() {
    let scene = Scene::new(Visibility::Private);
    let other = ServerId::from_bytes([9; 32]);
    let error = ServerState::fold(other, &scene.genesis, scene.control_log, &[]).unwrap_err();
    assert_eq!(error, FoldError::GenesisMismatch);
    assert_eq!(error.code(), "control.genesis_mismatch");
    assert_eq!(
        ServerState::genesis(other, &scene.genesis, scene.control_log).unwrap_err(),
        FoldError::GenesisMismatch
    );
}

#[test]
fn genesis_folds_first_whatever_its_order_key() {
    let mut scene = Scene::new(Visibility::Public);
    scene.genesis.lamport = 1_000;
    scene.state = ServerState::genesis(scene.server, &scene.genesis, scene.control_log).unwrap();
    // Sorts before the genesis, is still folded after it.
    scene.join(&user(2));
    assert!(scene.fold().is_member(&user(2).user_id()));
}

#[test]
fn create_server_after_the_genesis_is_denied() {
    let mut scene = Scene::new(Visibility::Private);
    let event = ControlEvent::CreateServer(CreateServer {
        name: "again".into(),
        description: String::new(),
        visibility: Visibility::Public,
        general_channel_id: channel_id(1),
        owner_name: String::new(),
    });
    let denied = scene.denied(&owner(), event);
    assert_eq!(denied, Denied::GenesisOnly);
    assert_eq!(denied.code(), "permission.genesis_only");
    assert_eq!(scene.state.profile().name, "Test server");
}

#[test]
fn the_genesis_again_is_a_duplicate_not_a_rejection() {
    let mut scene = Scene::new(Visibility::Private);
    let genesis = scene.genesis.clone();
    scene.push(genesis.clone()).unwrap();
    assert!(scene.state.rejected().is_empty());
    let folded = ServerState::fold(
        scene.server,
        &genesis,
        scene.control_log,
        &[genesis.clone(), genesis.clone()],
    )
    .unwrap();
    assert!(folded.rejected().is_empty());
}

// ---- membership is checked first --------------------------------------

#[test]
fn non_members_may_do_nothing_but_join() {
    let mut scene = Scene::new(Visibility::Public);
    let stranger = user(9);
    for event in [
        create_channel(1, "x"),
        issue(1, None, None),
        leave(Vec::new()),
        key_grant(1, &owner()),
        rotation(2, 0, 1, 1),
        ControlEvent::UpdateServerProfile(ServerProfile {
            name: "mine".into(),
            description: String::new(),
            visibility: Visibility::Public,
        }),
    ] {
        let denied = scene.denied(&stranger, event);
        assert_eq!(
            denied,
            Denied::NotAMember {
                user: stranger.user_id()
            }
        );
        assert_eq!(denied.code(), "permission.not_a_member");
    }
    // A former member is a non-member too.
    scene.join(&stranger);
    scene.ok(&stranger, leave(Vec::new()));
    let denied = scene.denied(&stranger, issue(2, None, None));
    assert_eq!(denied.code(), "permission.not_a_member");
}

// ---- channels ---------------------------------------------------------

#[test]
fn create_channel_needs_an_admin() {
    let mut scene = Scene::new(Visibility::Public);
    let moderator = user(2);
    let admin = user(3);
    scene.member_with_role(&moderator, Role::Moderator);
    scene.member_with_role(&admin, Role::Admin);
    let denied = scene.denied(&moderator, create_channel(1, "random"));
    assert_eq!(
        denied,
        Denied::RoleTooLow {
            needed: Role::Admin,
            has: Role::Moderator
        }
    );
    assert_eq!(denied.code(), "permission.role_too_low");
    scene.ok(&admin, create_channel(1, "random"));
    let channel = scene.state.channel(&channel_id(1)).unwrap();
    assert_eq!(channel.name, "random");
    assert_eq!(channel.topic, "about random");
    assert_eq!(channel.created_by, admin.user_id());
    assert_eq!(channel.log, scene.server.channel_log(&channel_id(1)));
    assert_eq!(
        scene.state.channel_by_log(&channel.log).unwrap().id,
        channel_id(1)
    );
    let names: Vec<_> = scene.state.channels().map(|c| c.name.clone()).collect();
    assert_eq!(names, ["general", "random"]);
}

#[test]
fn channel_ids_are_never_reused() {
    let mut scene = Scene::new(Visibility::Public);
    scene.ok(&owner(), create_channel(1, "random"));
    let denied = scene.denied(&owner(), create_channel(1, "other"));
    assert_eq!(denied, Denied::ChannelExists);
    assert_eq!(denied.code(), "permission.channel_exists");
    scene.ok(&owner(), delete_channel(1));
    assert_eq!(
        scene.denied(&owner(), create_channel(1, "random")),
        Denied::ChannelExists
    );
}

#[test]
fn channel_names_are_unique_among_live_channels_ignoring_case() {
    let mut scene = Scene::new(Visibility::Public);
    let denied = scene.denied(&owner(), create_channel(1, "General"));
    assert_eq!(
        denied,
        Denied::ChannelNameTaken {
            name: "General".into()
        }
    );
    assert_eq!(denied.code(), "permission.channel_name_taken");
    // A deleted channel's name is free again.
    scene.ok(&owner(), create_channel(1, "Café"));
    scene.ok(&owner(), delete_channel(1));
    assert!(scene.state.channel_by_name("café").is_none());
    scene.ok(&owner(), create_channel(2, "CAFÉ"));
    assert_eq!(
        scene.state.channel_by_name("café").unwrap().id,
        channel_id(2)
    );
}

#[test]
fn rename_channel_rules() {
    let mut scene = Scene::new(Visibility::Public);
    let moderator = user(2);
    scene.member_with_role(&moderator, Role::Moderator);
    scene.ok(&owner(), create_channel(1, "random"));
    assert_eq!(
        scene.denied(&moderator, rename_channel(1, "chat")).code(),
        "permission.role_too_low"
    );
    // Unknown and deleted channels.
    let denied = scene.denied(&owner(), rename_channel(7, "chat"));
    assert_eq!(denied, Denied::UnknownChannel);
    assert_eq!(denied.code(), "permission.unknown_channel");
    // Taken by another live channel.
    assert_eq!(
        scene.denied(&owner(), rename_channel(1, "GENERAL")),
        Denied::ChannelNameTaken {
            name: "GENERAL".into()
        }
    );
    // Its own name in another case is fine; the old name is freed.
    scene.ok(&owner(), rename_channel(1, "Random"));
    scene.ok(&owner(), rename_channel(1, "chat"));
    let channel = scene.state.channel(&channel_id(1)).unwrap();
    assert_eq!(channel.name, "chat");
    assert_eq!(channel.topic, "about chat");
    assert!(scene.state.channel_by_name("random").is_none());
    assert_eq!(
        scene.state.channel_by_name("CHAT").unwrap().id,
        channel_id(1)
    );
    scene.ok(&owner(), create_channel(2, "random"));
    scene.ok(&owner(), delete_channel(2));
    assert_eq!(
        scene.denied(&owner(), rename_channel(2, "again")),
        Denied::UnknownChannel
    );
}

#[test]
fn delete_channel_rules() {
    let mut scene = Scene::new(Visibility::Public);
    let moderator = user(2);
    scene.member_with_role(&moderator, Role::Moderator);
    let general = scene.general.as_bytes()[0];
    assert_eq!(
        scene.denied(&moderator, delete_channel(general)).code(),
        "permission.role_too_low"
    );
    assert_eq!(
        scene.denied(&owner(), delete_channel(7)),
        Denied::UnknownChannel
    );
    // Deleting the last live channel is allowed.
    scene.ok(&owner(), delete_channel(general));
    assert_eq!(scene.state.channels().count(), 0);
    let channel = scene.state.channel(&scene.general).unwrap();
    assert!(channel.deleted);
    assert!(scene.state.channel_by_log(&channel.log).unwrap().deleted);
    assert_eq!(
        scene.denied(&owner(), delete_channel(general)),
        Denied::UnknownChannel
    );
}

// ---- invites ----------------------------------------------------------

#[test]
fn any_member_issues_invites_once_per_id() {
    let mut scene = Scene::new(Visibility::Public);
    let member = user(2);
    scene.join(&member);
    scene.ok(&member, issue(1, Some(T0 + 99), Some(3)));
    let invite = scene.state.invite(&invite_id(1)).unwrap();
    assert_eq!(invite.issuer, Some(member.user_id()));
    assert_eq!(invite.expires_at_ms, Some(T0 + 99));
    assert_eq!(invite.max_uses, Some(3));
    assert_eq!(invite.uses, 0);
    assert!(!invite.revoked);
    let denied = scene.denied(&owner(), issue(1, None, None));
    assert_eq!(denied, Denied::InviteExists);
    assert_eq!(denied.code(), "permission.invite_exists");
}

#[test]
fn invites_are_revoked_by_their_issuer_or_an_admin() {
    let mut scene = Scene::new(Visibility::Public);
    let (issuer, other, admin) = (user(2), user(3), user(4));
    scene.join(&issuer);
    scene.join(&other);
    scene.member_with_role(&admin, Role::Admin);
    scene.ok(&issuer, issue(1, None, None));
    scene.ok(&issuer, issue(2, None, None));
    let denied = scene.denied(&other, revoke_invite(1));
    assert_eq!(denied, Denied::NotInviteIssuer);
    assert_eq!(denied.code(), "permission.not_invite_issuer");
    scene.ok(&issuer, revoke_invite(1));
    assert!(scene.state.invite(&invite_id(1)).unwrap().revoked);
    scene.ok(&admin, revoke_invite(2));
    assert!(scene.state.invite(&invite_id(2)).unwrap().revoked);
    // Twice is fine.
    scene.ok(&issuer, revoke_invite(1));
}

#[test]
fn unknown_invites_are_revoked_only_by_admins() {
    let mut scene = Scene::new(Visibility::Private);
    let member = user(2);
    scene.join(&member);
    assert_eq!(
        scene.denied(&member, revoke_invite(5)),
        Denied::RoleTooLow {
            needed: Role::Admin,
            has: Role::Member
        }
    );
    scene.ok(&owner(), revoke_invite(5));
    let invite = scene.state.invite(&invite_id(5)).unwrap();
    assert_eq!(invite.issuer, None);
    assert!(invite.revoked);
    // It can be neither announced nor redeemed now.
    assert_eq!(
        scene.denied(&member, issue(5, None, None)),
        Denied::InviteExists
    );
    let signed = scene.invite(&member, 5, None, None, 1);
    assert_eq!(
        scene.denied(&user(3), join(Some(signed), "c")),
        Denied::InviteRevoked
    );
}

// ---- join -------------------------------------------------------------

#[test]
fn public_servers_are_joined_without_an_invite() {
    let mut scene = Scene::new(Visibility::Public);
    let newcomer = user(2);
    scene.ok(&newcomer, join(None, "Newcomer"));
    let member = scene.state.member(&newcomer.user_id()).unwrap();
    assert_eq!(member.display_name, "Newcomer");
    assert_eq!(member.role, Role::Member);
    assert_eq!(member.joined_at_ms, scene.now_ms);
    assert_eq!(member.invite, None);
}

#[test]
fn private_servers_need_an_invite() {
    let mut scene = Scene::new(Visibility::Private);
    let denied = scene.denied(&user(2), join(None, "b"));
    assert_eq!(denied, Denied::InviteRequired);
    assert_eq!(denied.code(), "permission.invite_required");
    // The visibility at that point of the fold decides.
    scene.ok(
        &owner(),
        ControlEvent::UpdateServerProfile(ServerProfile {
            name: "Open now".into(),
            description: String::new(),
            visibility: Visibility::Public,
        }),
    );
    scene.ok(&user(2), join(None, "b"));
}

#[test]
fn members_cannot_join_again() {
    let mut scene = Scene::new(Visibility::Public);
    let denied = scene.denied(&owner(), join(None, "me"));
    assert_eq!(denied, Denied::AlreadyMember);
    assert_eq!(denied.code(), "permission.already_member");
}

#[test]
fn banned_users_cannot_join() {
    let mut scene = Scene::new(Visibility::Public);
    let troll = user(2);
    scene.ok(&owner(), ban(&troll, Vec::new()));
    let denied = scene.denied(&troll, join(None, "troll"));
    assert_eq!(denied, Denied::Banned);
    assert_eq!(denied.code(), "permission.banned");
}

#[test]
fn a_join_redeems_an_invite_and_registers_it() {
    let mut scene = Scene::new(Visibility::Private);
    let invite = scene.invite(&owner(), 1, Some(T0 + 1_000_000), Some(2), 1);
    scene.ok(&user(2), join(Some(invite.clone()), "b"));
    let state = scene.state.invite(&invite_id(1)).unwrap();
    assert_eq!(state.issuer, Some(owner().user_id()));
    assert_eq!(state.expires_at_ms, Some(T0 + 1_000_000));
    assert_eq!(state.max_uses, Some(2));
    assert_eq!(state.uses, 1);
    assert_eq!(
        scene.state.member(&user(2).user_id()).unwrap().invite,
        Some(invite_id(1))
    );
    // An announced invite counts its uses too.
    scene.ok(&owner(), issue(2, None, None));
    let announced = scene.invite(&owner(), 2, None, None, 1);
    scene.ok(&user(3), join(Some(announced), "c"));
    assert_eq!(scene.state.invite(&invite_id(2)).unwrap().uses, 1);
}

#[test]
fn invites_for_another_server_are_refused() {
    let mut scene = Scene::new(Visibility::Private);
    let invite = signed_invite(ServerId::from_bytes([3; 32]), &owner(), 1, None, None, 1);
    let denied = scene.denied(&user(2), join(Some(invite), "b"));
    assert_eq!(denied, Denied::InviteWrongServer);
    assert_eq!(denied.code(), "permission.invite_wrong_server");
}

#[test]
fn the_inviter_must_be_a_member_at_that_point() {
    let mut scene = Scene::new(Visibility::Private);
    let (inviter, friend) = (user(2), user(3));
    let stranger_invite = scene.invite(&user(8), 1, None, None, 1);
    let denied = scene.denied(&friend, join(Some(stranger_invite), "c"));
    assert_eq!(denied, Denied::InviterNotMember);
    assert_eq!(denied.code(), "permission.inviter_not_member");
    scene.join(&inviter);
    let invite = scene.invite(&inviter, 2, None, None, 1);
    scene.ok(&inviter, leave(Vec::new()));
    assert_eq!(
        scene.denied(&friend, join(Some(invite.clone()), "c")),
        Denied::InviterNotMember
    );
    scene.join(&inviter);
    scene.ok(&friend, join(Some(invite), "c"));
}

#[test]
fn an_invite_id_announced_by_someone_else_is_refused() {
    let mut scene = Scene::new(Visibility::Private);
    let mallory = user(2);
    scene.join(&mallory);
    // Mallory announces the id of the owner's invite, with no limits.
    scene.ok(&mallory, issue(1, None, None));
    let invite = scene.invite(&owner(), 1, None, Some(1), 1);
    let denied = scene.denied(&user(3), join(Some(invite), "c"));
    assert_eq!(denied, Denied::InviteIssuerMismatch);
    assert_eq!(denied.code(), "permission.invite_issuer_mismatch");
}

#[test]
fn expired_invites_are_refused_by_the_joins_timestamp() {
    let mut scene = Scene::new(Visibility::Private);
    // The next two records are stamped T0 + 1 s and T0 + 2 s: the first is
    // before the expiry plus the clock tolerance, the second exactly at it
    // (as `Invite::is_expired` says: the joiner's clock may be ahead of the
    // inviter's by up to the tolerance).
    let invite = scene.invite(&owner(), 1, Some(T0 + 2_000 - MAX_CLOCK_SKEW_MS), None, 1);
    scene.ok(&user(2), join(Some(invite.clone()), "within the tolerance"));
    let denied = scene.denied(&user(3), join(Some(invite), "at the tolerance"));
    assert_eq!(denied, Denied::InviteExpired);
    assert_eq!(denied.code(), "permission.invite_expired");
    // The announced expiry counts too (the stricter wins).
    scene.ok(&owner(), issue(2, Some(T0 - MAX_CLOCK_SKEW_MS), None));
    let unlimited = scene.invite(&owner(), 2, None, None, 1);
    assert_eq!(
        scene.denied(&user(3), join(Some(unlimited), "c")),
        Denied::InviteExpired
    );
}

#[test]
fn revoked_invites_are_refused() {
    let mut scene = Scene::new(Visibility::Private);
    let invite = scene.invite(&owner(), 1, None, None, 1);
    scene.ok(&user(2), join(Some(invite.clone()), "b"));
    scene.ok(&owner(), revoke_invite(1));
    let denied = scene.denied(&user(3), join(Some(invite), "c"));
    assert_eq!(denied, Denied::InviteRevoked);
    assert_eq!(denied.code(), "permission.invite_revoked");
}

#[test]
fn exhausted_invites_are_refused() {
    let mut scene = Scene::new(Visibility::Private);
    let invite = scene.invite(&owner(), 1, None, Some(1), 1);
    scene.ok(&user(2), join(Some(invite.clone()), "b"));
    let denied = scene.denied(&user(3), join(Some(invite), "c"));
    assert_eq!(denied, Denied::InviteExhausted);
    assert_eq!(denied.code(), "permission.invite_exhausted");
    // The announced limit counts too.
    scene.ok(&owner(), issue(2, None, Some(1)));
    let unlimited = scene.invite(&owner(), 2, None, None, 1);
    scene.ok(&user(3), join(Some(unlimited.clone()), "c"));
    assert_eq!(
        scene.denied(&user(4), join(Some(unlimited), "d")),
        Denied::InviteExhausted
    );
}

#[test]
fn invites_from_a_future_epoch_are_refused() {
    let mut scene = Scene::new(Visibility::Private);
    let invite = scene.invite(&owner(), 1, None, None, 2);
    let denied = scene.denied(&user(2), join(Some(invite.clone()), "b"));
    assert_eq!(
        denied,
        Denied::InviteFromTheFuture {
            invite_epoch: 2,
            current: 1
        }
    );
    assert_eq!(denied.code(), "permission.invite_from_the_future");
    scene.ok(&owner(), rotation(2, 0, 1, 1));
    scene.ok(&user(2), join(Some(invite), "b"));
}

#[test]
fn a_join_clears_an_earlier_departure() {
    let mut scene = Scene::new(Visibility::Public);
    let member = user(2);
    let log = scene.general_log();
    scene.join(&member);
    scene.ok(&member, leave(vec![cut(log, 4)]));
    assert!(scene.state.departure(&member.user_id()).is_some());
    assert!(!scene.state.may_post(&member.user_id(), &log, 5));
    scene.join(&member);
    assert!(scene.state.departure(&member.user_id()).is_none());
    assert!(scene.state.may_post(&member.user_id(), &log, 5));
}

// ---- leave, kick, ban, unban -------------------------------------------

#[test]
fn leaving_becomes_a_departure_with_the_highest_cut_per_log() {
    let mut scene = Scene::new(Visibility::Public);
    let member = user(2);
    let log = scene.general_log();
    let other = LogId::from_bytes([5; 32]);
    scene.join(&member);
    scene.ok(
        &member,
        leave(vec![cut(log, 3), cut(other, 1), cut(log, 7), cut(log, 5)]),
    );
    assert!(!scene.state.is_member(&member.user_id()));
    let departure = scene.state.departure(&member.user_id()).unwrap();
    assert_eq!(departure.kind, DepartureKind::Left);
    assert_eq!(departure.by, member.user_id());
    assert_eq!(departure.cuts, BTreeMap::from([(log, 7), (other, 1)]));
}

#[test]
fn the_owner_may_leave() {
    let mut scene = Scene::new(Visibility::Public);
    scene.ok(&owner(), leave(Vec::new()));
    assert!(!scene.state.is_member(&owner().user_id()));
    assert_eq!(scene.state.owner(), owner().user_id());
}

#[test]
fn kicking_needs_a_moderator_over_a_lower_role() {
    let mut scene = Scene::new(Visibility::Public);
    let (member, moderator, other_moderator, victim) = (user(2), user(3), user(4), user(5));
    scene.join(&member);
    scene.member_with_role(&moderator, Role::Moderator);
    scene.member_with_role(&other_moderator, Role::Moderator);
    scene.join(&victim);
    assert_eq!(
        scene.denied(&member, kick(&victim, Vec::new())),
        Denied::RoleTooLow {
            needed: Role::Moderator,
            has: Role::Member
        }
    );
    let denied = scene.denied(&moderator, kick(&other_moderator, Vec::new()));
    assert_eq!(
        denied,
        Denied::DoesNotOutrank {
            target: other_moderator.user_id()
        }
    );
    assert_eq!(denied.code(), "permission.does_not_outrank");
    let denied = scene.denied(&moderator, kick(&user(9), Vec::new()));
    assert_eq!(
        denied,
        Denied::NotAMember {
            user: user(9).user_id()
        }
    );
    let log = scene.general_log();
    scene.ok(&moderator, kick(&victim, vec![cut(log, 2)]));
    let departure = scene.state.departure(&victim.user_id()).unwrap();
    assert_eq!(departure.kind, DepartureKind::Kicked);
    assert_eq!(departure.by, moderator.user_id());
    assert_eq!(departure.cuts, BTreeMap::from([(log, 2)]));
    assert!(!scene.state.is_member(&victim.user_id()));
    assert!(!scene.state.is_banned(&victim.user_id()));
}

#[test]
fn nobody_outranks_an_owner() {
    let mut scene = Scene::new(Visibility::Public);
    let second_owner = user(2);
    scene.member_with_role(&second_owner, Role::Owner);
    assert_eq!(
        scene.denied(&second_owner, kick(&owner(), Vec::new())),
        Denied::DoesNotOutrank {
            target: owner().user_id()
        }
    );
    assert_eq!(
        scene.denied(&second_owner, ban(&owner(), Vec::new())),
        Denied::DoesNotOutrank {
            target: owner().user_id()
        }
    );
}

#[test]
fn banning_needs_an_admin_over_a_lower_role() {
    let mut scene = Scene::new(Visibility::Public);
    let (moderator, admin, other_admin, victim) = (user(2), user(3), user(4), user(5));
    scene.member_with_role(&moderator, Role::Moderator);
    scene.member_with_role(&admin, Role::Admin);
    scene.member_with_role(&other_admin, Role::Admin);
    scene.join(&victim);
    assert_eq!(
        scene.denied(&moderator, ban(&victim, Vec::new())),
        Denied::RoleTooLow {
            needed: Role::Admin,
            has: Role::Moderator
        }
    );
    assert_eq!(
        scene.denied(&admin, ban(&other_admin, Vec::new())),
        Denied::DoesNotOutrank {
            target: other_admin.user_id()
        }
    );
    let log = scene.general_log();
    scene.ok(&admin, ban(&victim, vec![cut(log, 9)]));
    assert!(scene.state.is_banned(&victim.user_id()));
    assert!(!scene.state.is_member(&victim.user_id()));
    let departure = scene.state.departure(&victim.user_id()).unwrap();
    assert_eq!(departure.kind, DepartureKind::Banned);
    assert_eq!(departure.by, admin.user_id());
    assert_eq!(departure.cuts, BTreeMap::from([(log, 9)]));
    let denied = scene.denied(&admin, ban(&victim, Vec::new()));
    assert_eq!(denied, Denied::AlreadyBanned);
    assert_eq!(denied.code(), "permission.already_banned");
}

#[test]
fn non_members_can_be_banned_pre_emptively() {
    let mut scene = Scene::new(Visibility::Public);
    let stranger = user(2);
    scene.ok(&owner(), ban(&stranger, vec![cut(scene.general_log(), 1)]));
    assert!(scene.state.is_banned(&stranger.user_id()));
    // Not a member, so no departure (and no history to keep).
    assert!(scene.state.departure(&stranger.user_id()).is_none());
    assert_eq!(scene.state.banned().count(), 1);
}

#[test]
fn unbanning_needs_an_admin_and_a_banned_user() {
    let mut scene = Scene::new(Visibility::Public);
    let (moderator, troll) = (user(2), user(3));
    scene.member_with_role(&moderator, Role::Moderator);
    let denied = scene.denied(&owner(), unban(&troll));
    assert_eq!(denied, Denied::NotBanned);
    assert_eq!(denied.code(), "permission.not_banned");
    scene.ok(&owner(), ban(&troll, Vec::new()));
    assert_eq!(
        scene.denied(&moderator, unban(&troll)).code(),
        "permission.role_too_low"
    );
    scene.ok(&owner(), unban(&troll));
    assert!(!scene.state.is_banned(&troll.user_id()));
    scene.join(&troll);
}

// ---- roles ------------------------------------------------------------

#[test]
fn granting_needs_an_admin() {
    let mut scene = Scene::new(Visibility::Public);
    let (moderator, member) = (user(2), user(3));
    scene.member_with_role(&moderator, Role::Moderator);
    scene.join(&member);
    assert_eq!(
        scene.denied(&moderator, grant(&member, Role::Moderator)),
        Denied::RoleTooLow {
            needed: Role::Admin,
            has: Role::Moderator
        }
    );
}

#[test]
fn admins_grant_roles_below_admin_to_members_they_outrank() {
    let mut scene = Scene::new(Visibility::Public);
    let (admin, other_admin, member) = (user(2), user(3), user(4));
    scene.member_with_role(&admin, Role::Admin);
    scene.member_with_role(&other_admin, Role::Admin);
    scene.join(&member);
    scene.ok(&admin, grant(&member, Role::Moderator));
    assert_eq!(
        scene.state.role_of(&member.user_id()),
        Some(Role::Moderator)
    );
    // Granting a lower role demotes; fine over a lower role.
    scene.ok(&admin, grant(&member, Role::Member));
    assert_eq!(scene.state.role_of(&member.user_id()), Some(Role::Member));
    // Not over an equal role.
    assert_eq!(
        scene.denied(&admin, grant(&other_admin, Role::Moderator)),
        Denied::DoesNotOutrank {
            target: other_admin.user_id()
        }
    );
}

#[test]
fn only_owners_grant_admin_or_owner() {
    let mut scene = Scene::new(Visibility::Public);
    let (admin, member) = (user(2), user(3));
    scene.member_with_role(&admin, Role::Admin);
    scene.join(&member);
    for role in [Role::Admin, Role::Owner] {
        assert_eq!(
            scene.denied(&admin, grant(&member, role)),
            Denied::RoleTooLow {
                needed: Role::Owner,
                has: Role::Admin
            }
        );
    }
    scene.ok(&owner(), grant(&member, Role::Admin));
    scene.ok(&owner(), grant(&member, Role::Owner));
    assert_eq!(scene.state.role_of(&member.user_id()), Some(Role::Owner));
    // An owner may demote another (non-genesis) owner.
    scene.ok(&owner(), grant(&member, Role::Admin));
    assert_eq!(scene.state.role_of(&member.user_id()), Some(Role::Admin));
}

#[test]
fn granting_needs_a_member_and_a_new_role() {
    let mut scene = Scene::new(Visibility::Public);
    let member = user(2);
    scene.join(&member);
    let denied = scene.denied(&owner(), grant(&member, Role::Member));
    assert_eq!(denied, Denied::AlreadyHasRole);
    assert_eq!(denied.code(), "permission.already_has_role");
    assert_eq!(
        scene.denied(&owner(), grant(&user(9), Role::Moderator)),
        Denied::NotAMember {
            user: user(9).user_id()
        }
    );
}

#[test]
fn the_genesis_owner_cannot_be_demoted_by_a_grant() {
    let mut scene = Scene::new(Visibility::Public);
    let second_owner = user(2);
    scene.member_with_role(&second_owner, Role::Owner);
    let denied = scene.denied(&second_owner, grant(&owner(), Role::Admin));
    assert_eq!(denied, Denied::CannotRevokeGenesisOwner);
    assert_eq!(denied.code(), "permission.cannot_revoke_genesis_owner");
    assert_eq!(scene.state.role_of(&owner().user_id()), Some(Role::Owner));
}

#[test]
fn revoking_the_member_role_is_impossible() {
    let mut scene = Scene::new(Visibility::Public);
    let member = user(2);
    scene.join(&member);
    let denied = scene.denied(&owner(), revoke(&member, Role::Member));
    assert_eq!(denied, Denied::CannotRevokeMember);
    assert_eq!(denied.code(), "permission.cannot_revoke_member");
}

#[test]
fn revoking_needs_the_role_held() {
    let mut scene = Scene::new(Visibility::Public);
    let moderator = user(2);
    scene.member_with_role(&moderator, Role::Moderator);
    let denied = scene.denied(&owner(), revoke(&moderator, Role::Admin));
    assert_eq!(denied, Denied::RoleNotHeld);
    assert_eq!(denied.code(), "permission.role_not_held");
    assert_eq!(
        scene.denied(&owner(), revoke(&user(9), Role::Admin)),
        Denied::NotAMember {
            user: user(9).user_id()
        }
    );
}

#[test]
fn revoking_needs_an_admin_who_outranks_or_an_owner() {
    let mut scene = Scene::new(Visibility::Public);
    let (moderator, other_moderator, admin, other_admin) = (user(2), user(3), user(4), user(5));
    scene.member_with_role(&moderator, Role::Moderator);
    scene.member_with_role(&other_moderator, Role::Moderator);
    scene.member_with_role(&admin, Role::Admin);
    scene.member_with_role(&other_admin, Role::Admin);
    assert_eq!(
        scene.denied(&moderator, revoke(&other_moderator, Role::Moderator)),
        Denied::RoleTooLow {
            needed: Role::Admin,
            has: Role::Moderator
        }
    );
    assert_eq!(
        scene.denied(&admin, revoke(&other_admin, Role::Admin)),
        Denied::DoesNotOutrank {
            target: other_admin.user_id()
        }
    );
    scene.ok(&admin, revoke(&moderator, Role::Moderator));
    assert_eq!(
        scene.state.role_of(&moderator.user_id()),
        Some(Role::Member)
    );
    scene.ok(&owner(), revoke(&other_admin, Role::Admin));
    assert_eq!(
        scene.state.role_of(&other_admin.user_id()),
        Some(Role::Member)
    );
}

#[test]
fn owners_revoke_owners_but_never_the_genesis_owner() {
    let mut scene = Scene::new(Visibility::Public);
    let second_owner = user(2);
    scene.member_with_role(&second_owner, Role::Owner);
    let denied = scene.denied(&second_owner, revoke(&owner(), Role::Owner));
    assert_eq!(denied, Denied::CannotRevokeGenesisOwner);
    scene.ok(&owner(), revoke(&second_owner, Role::Owner));
    assert_eq!(
        scene.state.role_of(&second_owner.user_id()),
        Some(Role::Member)
    );
}

#[test]
fn a_returning_genesis_owner_is_a_member_like_any_other() {
    let mut scene = Scene::new(Visibility::Public);
    let second_owner = user(2);
    scene.member_with_role(&second_owner, Role::Owner);
    scene.ok(&owner(), leave(Vec::new()));
    scene.ok(&owner(), join(None, "back"));
    assert_eq!(scene.state.role_of(&owner().user_id()), Some(Role::Member));
    // Only the genesis owner's *Owner* role is protected.
    scene.ok(&second_owner, grant(&owner(), Role::Moderator));
    scene.ok(&second_owner, revoke(&owner(), Role::Moderator));
    assert_eq!(scene.state.role_of(&owner().user_id()), Some(Role::Member));
}

// ---- keys -------------------------------------------------------------

#[test]
fn rotating_needs_a_moderator() {
    let mut scene = Scene::new(Visibility::Public);
    let (member, moderator) = (user(2), user(3));
    scene.join(&member);
    scene.member_with_role(&moderator, Role::Moderator);
    assert_eq!(
        scene.denied(&member, rotation(2, 0, 1, 1)),
        Denied::RoleTooLow {
            needed: Role::Moderator,
            has: Role::Member
        }
    );
    scene.ok(&moderator, rotation(2, 0, 1, 1));
    assert_eq!(scene.state.current_epoch(), 2);
    let started = scene.state.rotation(2).unwrap();
    assert_eq!(started.epoch, 2);
    assert_eq!(started.by, moderator.user_id());
    assert_eq!(started.sealed_keys.len(), 2);
    assert_eq!(started.previous_key.len(), messaging_proto::WRAPPED_KEY_LEN);
    assert!(started.complete());
    assert!(scene.state.rotation(1).is_none());
}

#[test]
fn a_rotation_moves_to_the_next_epoch_only() {
    let mut scene = Scene::new(Visibility::Public);
    let denied = scene.denied(&owner(), rotation(3, 0, 1, 1));
    assert_eq!(
        denied,
        Denied::EpochMismatch {
            current: 1,
            found: 3
        }
    );
    assert_eq!(denied.code(), "permission.epoch_mismatch");
    scene.ok(&owner(), rotation(2, 0, 1, 1));
    scene.ok(&owner(), rotation(3, 0, 1, 2));
    assert_eq!(
        scene.denied(&owner(), rotation(2, 0, 1, 3)),
        Denied::EpochMismatch {
            current: 3,
            found: 2
        }
    );
    assert_eq!(scene.state.current_epoch(), 3);
}

#[test]
fn rotation_parts_are_collected() {
    let mut scene = Scene::new(Visibility::Public);
    scene.ok(&owner(), rotation(2, 1, 3, 1));
    assert!(!scene.state.rotation(2).unwrap().complete());
    let denied = scene.denied(&owner(), rotation(2, 1, 3, 2));
    assert_eq!(denied, Denied::DuplicatePart { part: 1 });
    assert_eq!(denied.code(), "permission.duplicate_part");
    let denied = scene.denied(&owner(), rotation(2, 0, 4, 2));
    assert_eq!(
        denied,
        Denied::PartCountMismatch {
            expected: 3,
            found: 4
        }
    );
    assert_eq!(denied.code(), "permission.part_count_mismatch");
    scene.ok(&owner(), rotation(2, 0, 3, 3));
    scene.ok(&owner(), rotation(2, 2, 3, 5));
    let done = scene.state.rotation(2).unwrap();
    assert!(done.complete());
    assert_eq!(done.parts, BTreeSet::from([0, 1, 2]));
    let firsts: Vec<u8> = done.sealed_keys.iter().map(|key| key[0]).collect();
    assert_eq!(firsts, [1, 0, 3, 2, 5, 4]);
    assert_eq!(scene.state.current_epoch(), 2);
}

#[test]
fn the_first_rotation_in_display_order_wins() {
    let mut scene = Scene::new(Visibility::Public);
    let admin = user(2);
    scene.member_with_role(&admin, Role::Admin);
    // Two rotations to epoch 2 with the same lamport clock: the author
    // bytes decide, whatever order the records arrive in.
    let mut by_owner = scene.record(&owner(), rotation(2, 0, 2, 1));
    let mut by_admin = scene.record(&admin, rotation(2, 0, 1, 2));
    by_admin.lamport = by_owner.lamport;
    by_owner.timestamp_ms = by_admin.timestamp_ms;
    let owner_first = by_owner.order_key() < by_admin.order_key();
    let (winner, loser) = if owner_first {
        (&by_owner, &by_admin)
    } else {
        (&by_admin, &by_owner)
    };
    for pair in [
        [by_owner.clone(), by_admin.clone()],
        [by_admin.clone(), by_owner.clone()],
    ] {
        let mut records = scene.records.clone();
        records.extend(pair);
        let state =
            ServerState::fold(scene.server, &scene.genesis, scene.control_log, &records).unwrap();
        assert_eq!(state.rotation(2).unwrap().by, winner.author);
        assert_eq!(state.rejected(), [(loser.hash, Denied::ConcurrentRotation)]);
        assert_eq!(
            Denied::ConcurrentRotation.code(),
            "permission.concurrent_rotation"
        );
    }
    scene.records.extend([by_owner, by_admin]);
    scene.state = scene.fold();
}

#[test]
fn key_grants_need_a_reached_epoch_and_a_member() {
    let mut scene = Scene::new(Visibility::Public);
    let member = user(2);
    scene.join(&member);
    for epoch in [0, 2] {
        assert_eq!(
            scene.denied(&member, key_grant(epoch, &owner())),
            Denied::EpochMismatch {
                current: 1,
                found: epoch
            }
        );
    }
    assert_eq!(
        scene.denied(&member, key_grant(1, &user(9))),
        Denied::NotAMember {
            user: user(9).user_id()
        }
    );
    scene.ok(&member, key_grant(1, &owner()));
    scene.ok(&owner(), rotation(2, 0, 1, 1));
    scene.ok(&owner(), key_grant(2, &member));
    let grants: Vec<_> = scene
        .state
        .key_grants()
        .iter()
        .map(|grant| (grant.epoch, grant.member))
        .collect();
    assert_eq!(grants, [(1, owner().user_id()), (2, member.user_id())]);
}

// ---- server-wide settings and moderation -------------------------------

#[test]
fn bootstrap_peers_are_set_by_admins() {
    let mut scene = Scene::new(Visibility::Public);
    let moderator = user(2);
    scene.member_with_role(&moderator, Role::Moderator);
    let peers = vec![BootstrapPeer {
        peer: user(7).user_id(),
        addrs: vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()],
    }];
    assert_eq!(
        scene
            .denied(&moderator, ControlEvent::SetBootstrapPeers(peers.clone()))
            .code(),
        "permission.role_too_low"
    );
    scene.ok(&owner(), ControlEvent::SetBootstrapPeers(peers.clone()));
    assert_eq!(scene.state.bootstrap_peers(), peers);
}

#[test]
fn the_profile_is_updated_by_admins() {
    let mut scene = Scene::new(Visibility::Private);
    let moderator = user(2);
    scene.member_with_role(&moderator, Role::Moderator);
    let profile = ServerProfile {
        name: "Renamed".into(),
        description: "new".into(),
        visibility: Visibility::Public,
    };
    assert_eq!(
        scene
            .denied(
                &moderator,
                ControlEvent::UpdateServerProfile(profile.clone())
            )
            .code(),
        "permission.role_too_low"
    );
    scene.ok(&owner(), ControlEvent::UpdateServerProfile(profile.clone()));
    assert_eq!(scene.state.profile(), &profile);
}

#[test]
fn moderators_redact_in_known_channels() {
    let mut scene = Scene::new(Visibility::Public);
    let (member, moderator) = (user(2), user(3));
    scene.join(&member);
    scene.member_with_role(&moderator, Role::Moderator);
    let target = EntryHash::from_bytes([4; 32]);
    let redact = |channel| ControlEvent::ModeratorRedact {
        channel_id: channel,
        target,
        reason: "off topic".into(),
    };
    assert_eq!(
        scene.denied(&member, redact(scene.general)).code(),
        "permission.role_too_low"
    );
    assert_eq!(
        scene.denied(&moderator, redact(channel_id(7))),
        Denied::UnknownChannel
    );
    scene.ok(&moderator, redact(scene.general));
    assert!(scene.state.is_moderator_redacted(&scene.general, &target));
    assert!(!scene.state.is_moderator_redacted(&channel_id(1), &target));
    // Deleted channels keep their history, so redaction still applies.
    scene.ok(&owner(), create_channel(1, "old"));
    scene.ok(&owner(), delete_channel(1));
    scene.ok(&moderator, redact(channel_id(1)));
    assert!(scene.state.is_moderator_redacted(&channel_id(1), &target));
}

// ---- may_post ---------------------------------------------------------

#[test]
fn may_post_follows_membership_cuts_and_live_channels() {
    let mut scene = Scene::new(Visibility::Public);
    let (member, leaver, stranger) = (user(2), user(3), user(4));
    let general = scene.general_log();
    scene.join(&member);
    scene.join(&leaver);
    scene.ok(&owner(), create_channel(1, "random"));
    let random = scene.server.channel_log(&channel_id(1));
    scene.ok(&leaver, leave(vec![cut(general, 3)]));
    assert!(scene.state.may_post(&member.user_id(), &general, 1_000));
    assert!(scene.state.may_post(&leaver.user_id(), &general, 3));
    assert!(!scene.state.may_post(&leaver.user_id(), &general, 4));
    // No cut for that log: nothing of theirs is accepted there.
    assert!(!scene.state.may_post(&leaver.user_id(), &random, 1));
    assert!(!scene.state.may_post(&stranger.user_id(), &general, 1));
    // Only channel logs of this server.
    assert!(
        !scene
            .state
            .may_post(&member.user_id(), &scene.control_log, 1)
    );
    assert!(
        !scene
            .state
            .may_post(&member.user_id(), &LogId::from_bytes([1; 32]), 1)
    );
    // Not in deleted channels, even history.
    scene.ok(&owner(), delete_channel(scene.general.as_bytes()[0]));
    assert!(!scene.state.may_post(&member.user_id(), &general, 1));
    assert!(!scene.state.may_post(&leaver.user_id(), &general, 1));
    assert!(scene.state.may_post(&member.user_id(), &random, 1));
}

// ---- the fold's bookkeeping -------------------------------------------

#[test]
fn duplicate_records_count_once() {
    let mut scene = Scene::new(Visibility::Public);
    let record = scene.record(&owner(), issue(1, None, None));
    scene.push(record.clone()).unwrap();
    // The same record again is not "InviteExists": it is the same record.
    scene.push(record.clone()).unwrap();
    assert!(scene.state.rejected().is_empty());
    assert!(scene.state.has_folded(&record.hash));
    let denied = scene.record(&user(9), issue(2, None, None));
    let first = scene.push(denied.clone()).unwrap_err();
    assert_eq!(scene.push(denied.clone()).unwrap_err(), first);
    assert_eq!(scene.state.rejected().len(), 1);
    let folded = ServerState::fold(
        scene.server,
        &scene.genesis,
        scene.control_log,
        &[record.clone(), denied.clone(), record, denied],
    )
    .unwrap();
    assert_eq!(folded, scene.state);
}

#[test]
fn equal_order_keys_fold_by_hash() {
    // An equivocating author: two records with one (lamport, author, seq)
    // claim the same channel name. The lower hash wins on every peer.
    let mut scene = Scene::new(Visibility::Public);
    let first = scene.record(&owner(), create_channel(1, "twin"));
    let mut second = first.clone();
    second.hash = EntryHash::from_bytes([0; 32]);
    second.event = create_channel(2, "twin");
    for records in [
        [first.clone(), second.clone()],
        [second.clone(), first.clone()],
    ] {
        let state =
            ServerState::fold(scene.server, &scene.genesis, scene.control_log, &records).unwrap();
        assert_eq!(state.channel_by_name("twin").unwrap().id, channel_id(2));
        assert_eq!(state.rejected()[0].0, first.hash);
    }
    scene.records.extend([first, second]);
    scene.state = scene.fold();
}

#[test]
fn apply_refuses_records_that_sort_before_the_last_one() {
    let mut scene = Scene::new(Visibility::Public);
    let early = scene.record(&user(2), join(None, "b"));
    let late = scene.record(&owner(), issue(1, None, None));
    scene.push(late.clone()).unwrap();
    assert_eq!(scene.state.last_applied(), Some(late.order_key()));
    let before = scene.state.clone();
    let denied = scene.state.apply(&early).unwrap_err();
    assert_eq!(denied, Denied::OutOfOrder);
    assert_eq!(denied.code(), "control.out_of_order");
    assert_eq!(scene.state, before);
    // The caller refolds instead.
    scene.records.push(early);
    scene.state = scene.fold();
    assert!(scene.state.is_member(&user(2).user_id()));
}

#[test]
fn denied_records_hold_their_place_in_the_order() {
    // B's kick of C is denied when it is folded; a grant that sorts before
    // it but arrives later must not be applied on top, or the incremental
    // state would differ from the fold (where the kick is allowed).
    let mut scene = Scene::new(Visibility::Public);
    let (b, c) = (user(2), user(3));
    scene.join(&b);
    scene.join(&c);
    let grant_record = scene.record(&owner(), grant(&b, Role::Moderator));
    let kick_record = scene.record(&b, kick(&c, Vec::new()));
    assert!(scene.push(kick_record.clone()).is_err());
    assert_eq!(scene.state.last_applied(), Some(kick_record.order_key()));
    assert_eq!(
        scene.state.apply(&grant_record).unwrap_err(),
        Denied::OutOfOrder
    );
    scene.records.push(grant_record);
    scene.state = scene.fold();
    assert!(!scene.state.is_member(&c.user_id()));
    assert!(scene.state.rejected().is_empty());
}

#[test]
fn rejected_records_are_listed_but_not_hashed() {
    let mut scene = Scene::new(Visibility::Public);
    let hash = scene.state.state_hash();
    let record = scene.record(&user(9), issue(1, None, None));
    scene.push(record.clone()).unwrap_err();
    assert_eq!(
        scene.state.rejected(),
        [(
            record.hash,
            Denied::NotAMember {
                user: user(9).user_id()
            }
        )]
    );
    assert_eq!(scene.state.state_hash(), hash);
}

#[test]
fn the_state_hash_covers_every_part_of_the_state() {
    let mut scene = Scene::new(Visibility::Public);
    let (a, b) = (user(2), user(3));
    let mut seen = BTreeSet::from([scene.state.state_hash()]);
    let log = scene.general_log();
    let steps = [
        (owner(), create_channel(1, "random")),
        (owner(), rename_channel(1, "chat")),
        (owner(), delete_channel(1)),
        (a.clone(), join(None, "a")),
        (b.clone(), join(None, "b")),
        (owner(), grant(&a, Role::Moderator)),
        (a.clone(), kick(&b, vec![cut(log, 1)])),
        (owner(), ban(&user(4), Vec::new())),
        (owner(), issue(1, None, None)),
        (owner(), revoke_invite(1)),
        (owner(), rotation(2, 0, 2, 1)),
        (owner(), rotation(2, 1, 2, 2)),
        (owner(), key_grant(2, &a)),
        (
            owner(),
            ControlEvent::SetBootstrapPeers(vec![BootstrapPeer {
                peer: user(7).user_id(),
                addrs: Vec::new(),
            }]),
        ),
        (
            a.clone(),
            ControlEvent::ModeratorRedact {
                channel_id: scene.general,
                target: EntryHash::from_bytes([1; 32]),
                reason: String::new(),
            },
        ),
        (
            owner(),
            ControlEvent::UpdateServerProfile(ServerProfile {
                name: "Test server".into(),
                description: "for tests".into(),
                visibility: Visibility::Private,
            }),
        ),
        (a.clone(), leave(vec![cut(log, 5)])),
        (owner(), unban(&user(4))),
    ];
    for (author, event) in steps {
        let kind = event.kind();
        scene.ok(&author, event);
        assert!(
            seen.insert(scene.state.state_hash()),
            "{kind} did not change the hash"
        );
    }
}
