//! First-start bootstrap: on a brand-new database, optionally create the `demo` campaign so
//! that `curl -i http://127.0.0.1:8080/demo` works right after the first start.

use crate::config::DemoConfig;
use crate::ids::random_token;
use crate::model::{NewCampaign, NewStream, StreamType};
use crate::store::{Store, StoreError};

/// Set once the first start's bootstrap ran; later starts never seed again.
const BOOTSTRAPPED: &str = "bootstrap.completed_at";

/// Runs the first-start bootstrap if this database never had it. Returns whether the demo
/// campaign was created. A database that already holds campaigns is never seeded.
pub async fn bootstrap(store: &dyn Store, demo: &DemoConfig) -> Result<bool, StoreError> {
    if store.meta_get(BOOTSTRAPPED).await?.is_some() {
        return Ok(false);
    }
    let seeded = demo.seed && store.count_campaigns().await? == 0;
    if seeded {
        let campaign = store
            .create_campaign(&NewCampaign::new(
                "demo",
                "Demo campaign",
                &random_token(16),
            ))
            .await?;
        let mut stream = NewStream::redirect(campaign.id, "Demo stream", &demo.url);
        stream.stream_type = StreamType::Default;
        store.create_stream(&stream).await?;
        tracing::info!(campaign_id = campaign.id, url = %demo.url, "Created the demo campaign at /demo.");
    }
    store
        .meta_set(BOOTSTRAPPED, &crate::model::unix_now().to_string())
        .await?;
    Ok(seeded)
}
