//! Fixtures shared by the panel and screenshot tests: a view model with
//! one server, one channel, two members and a few messages, on a fixed
//! clock so times read the same on every machine.
#![allow(dead_code, unreachable_pub)]

use desktop::model::{Model, Phase, Selection, Settings, Timeline};
use desktop::ui::time::Clock;
use node::api::{
    ChannelView, DeliveryState, IdentityView, MemberView, MessageView, ReactionView, ServerDetail,
    ServerView,
};

/// "Now" in the fixtures: 2027-01-15 12:00 UTC.
pub const NOW_MS: u64 = 1_800_014_400_000;

pub const SERVER: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
pub const CHANNEL: &str = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";
pub const ME: &str = "12D3KooWMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMe";
pub const BOB: &str = "12D3KooWBobBobBobBobBobBobBobBobBobBobBobBobBobBobBo";

pub fn message(id: &str, author: &str, name: &str, text: &str, seq: u64) -> MessageView {
    MessageView {
        message_id: id.repeat(64 / id.len()),
        author: author.to_owned(),
        author_name: name.to_owned(),
        text: text.to_owned(),
        timestamp_ms: NOW_MS - 3_600_000 + seq * 60_000,
        edited: false,
        redacted: false,
        reply_to: None,
        reactions: vec![],
        mine: author == ME,
        delivery: (author == ME).then_some(DeliveryState::Seen { by: 1, of: 1 }),
        cursor: format!("{seq:096x}"),
    }
}

/// A model with one server, one channel, two members and a few messages.
pub fn ready_model() -> Model {
    let mut model = Model::new(
        Phase::Ready,
        "/tmp/palaver-test".into(),
        Settings::default(),
        false,
    );
    model.clock = Clock::utc_at(NOW_MS);
    model.me = Some(IdentityView {
        user_id: ME.into(),
        display_name: "ada".into(),
    });
    let server = ServerView {
        server_id: SERVER.into(),
        name: "Garden Club".into(),
        description: "plants".into(),
        public: false,
        role: "owner".into(),
        unread: 0,
        members: 2,
    };
    model.servers = vec![server.clone()];
    model.details.insert(
        SERVER.into(),
        ServerDetail {
            server,
            channels: vec![ChannelView {
                channel_id: CHANNEL.into(),
                name: "general".into(),
                topic: String::new(),
                unread: 0,
            }],
            members: vec![
                MemberView {
                    user_id: ME.into(),
                    display_name: "ada".into(),
                    role: "owner".into(),
                    online: true,
                },
                MemberView {
                    user_id: BOB.into(),
                    display_name: "bob".into(),
                    role: "member".into(),
                    online: false,
                },
            ],
            bootstrap_peers: vec![],
            key_epoch: 1,
            state_hash: String::new(),
        },
    );
    let selection = Selection::Channel {
        server: SERVER.into(),
        channel: CHANNEL.into(),
    };
    let mut timeline = Timeline::default();
    let mut edited = message("b2", BOB, "bob", "fixed typo", 2);
    edited.edited = true;
    edited.reactions = vec![ReactionView {
        emoji: "👍".into(),
        users: vec![ME.into()],
    }];
    let mut deleted = message("b3", BOB, "bob", "", 3);
    deleted.redacted = true;
    timeline.add_page(
        vec![
            message("a4", ME, "ada", "my last words", 4),
            deleted,
            edited,
            message("a1", ME, "ada", "hello garden", 1),
        ],
        false,
    );
    model.timelines.insert(selection.clone(), timeline);
    model.selected = Some(selection);
    model
}
