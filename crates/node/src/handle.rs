//! The handle to a running node: requests with replies, and event streams.

use identity_core::UserId;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::api::{Event, NodeError, Request, Response};
use crate::node::Command;

/// A cheap, cloneable handle to a running node.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    user: UserId,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command").finish_non_exhaustive()
    }
}

impl NodeHandle {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        events: broadcast::Sender<Event>,
        user: UserId,
    ) -> Self {
        Self {
            commands,
            events,
            user,
        }
    }

    /// Our user id.
    pub fn user_id(&self) -> UserId {
        self.user
    }

    /// Sends a request and waits for its answer.
    pub async fn request(&self, request: Request) -> Result<Response, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command { request, reply })
            .await
            .map_err(|_| NodeError::stopped())?;
        answer.await.map_err(|_| NodeError::stopped())?
    }

    /// Sends a request without waiting for room in the command queue; for
    /// UIs that must never block. The answer arrives on the returned
    /// receiver.
    pub fn try_request(
        &self,
        request: Request,
    ) -> Result<oneshot::Receiver<Result<Response, NodeError>>, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .try_send(Command { request, reply })
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => NodeError::new(
                    crate::api::ErrorCategory::RateLimited,
                    "node.busy",
                    "the node is busy; try again",
                )
                .retry_after(100),
                mpsc::error::TrySendError::Closed(_) => NodeError::stopped(),
            })?;
        Ok(answer)
    }

    /// A new stream of events from now on.
    pub fn subscribe(&self) -> EventStream {
        EventStream {
            inner: self.events.subscribe(),
        }
    }

    /// Stops the node gracefully and waits until it has.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        match self.request(Request::Shutdown).await {
            Ok(_) => Ok(()),
            Err(err) if err.code == "node.stopped" => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// Events of a node. A subscriber that falls behind gets
/// [`Event::Lagged`] with the number of events it missed.
pub struct EventStream {
    inner: broadcast::Receiver<Event>,
}

impl EventStream {
    /// The next event; `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<Event> {
        match self.inner.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Event::Lagged { missed }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event if one is waiting (for UIs that poll each frame).
    pub fn try_recv(&mut self) -> Option<Event> {
        match self.inner.try_recv() {
            Ok(event) => Some(event),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => Some(Event::Lagged { missed }),
            Err(_) => None,
        }
    }
}
