//! Starting the projectors of every read model.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use proofline_commands::store::EventStore;
use proofline_domain::ids::Category;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db::{ReadDb, ReadError};
use crate::models::{self, Projection};
use crate::projector::{self, Projector};
use crate::subscription::{StoreSubscription, Subscription};

/// Makes the subscription of a projector, given its name, its checkpoint
/// and the categories of streams whose events it reads (a subscription may
/// hand over the others without their `data` and `metadata`).
pub type Subscribe = Arc<
    dyn Fn(
            &'static str,
            u64,
            &'static [Category],
        ) -> Pin<Box<dyn Future<Output = Box<dyn Subscription>> + Send>>
        + Send
        + Sync,
>;

/// Subscriptions that tail the store (embedded mode, or no bus).
pub fn store_subscriptions(store: Arc<dyn EventStore>) -> Subscribe {
    Arc::new(move |_, after, _| {
        let store = store.clone();
        Box::pin(
            async move { Box::new(StoreSubscription::new(store, after)) as Box<dyn Subscription> },
        )
    })
}

/// The running projectors.
pub struct ReadSide {
    pub db: ReadDb,
    /// Each projector's applied position.
    pub positions: Vec<(&'static str, watch::Receiver<u64>)>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl ReadSide {
    /// Prepares the tables and starts one projector per read model.
    pub async fn start(
        db: ReadDb,
        store: Arc<dyn EventStore>,
        subscribe: Subscribe,
    ) -> Result<Self, ReadError> {
        Self::start_these(db, store, subscribe, models::all()).await
    }

    pub async fn start_these(
        db: ReadDb,
        store: Arc<dyn EventStore>,
        subscribe: Subscribe,
        projections: Vec<Arc<dyn Projection>>,
    ) -> Result<Self, ReadError> {
        projector::prepare(&db, &projections).await?;
        let (stop, stopped) = watch::channel(false);
        let mut positions = Vec::new();
        let mut tasks = Vec::new();
        for projection in projections {
            let projection_categories = projection.categories();
            let projector = Projector::open(db.clone(), store.clone(), projection).await?;
            let name = projector.name();
            positions.push((name, projector.watch()));
            let subscription = subscribe(name, projector.checkpoint(), projection_categories).await;
            let mut stopped = stopped.clone();
            tasks.push(tokio::spawn(async move {
                projector
                    .run(subscription, async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await;
            }));
        }
        Ok(Self {
            db,
            positions,
            stop,
            tasks,
        })
    }

    /// Kills every projector where it is, as a crash would: a transaction
    /// in flight is rolled back.
    pub fn abort(self) {
        for task in self.tasks {
            task.abort();
        }
    }

    /// Stops every projector after the event it is applying.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
