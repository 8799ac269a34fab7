//! Starting and stopping the tracker: secrets, store, migrations, bootstrap, snapshot,
//! recorder, listener — and the reverse on shutdown, so that every answered click is written.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::net::IpNet;
use crate::recorder::{ClickRecorder, RecorderTask};
use crate::reload::{SnapshotCell, Supervisor};
use crate::secrets::{self, Generated, SecretsError};
use crate::store::{self, Store, StoreError};
use crate::traffic::TrafficEnv;

/// Why the tracker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Setup(String),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: SocketAddr, message: String },
}

/// A running tracker. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    pub local_addr: SocketAddr,
    /// Secrets generated on this start (shown once by the CLI).
    pub generated_secrets: Vec<Generated>,
    pub state: AppState,
    stop: watch::Sender<bool>,
    serve: JoinHandle<std::io::Result<()>>,
    recorder: RecorderTask,
    /// Tasks that end on `stop`: parked and held postbacks.
    background: Vec<JoinHandle<()>>,
}

/// Opens the journal in `data_dir/{dir}` with the recorder's durability and cap (none with
/// `memory` durability), off the runtime's threads: it reads and repairs segments and may
/// wait for its lock (a server of this process shutting down lets go of it a moment later).
async fn open_journal(
    config: &Config,
    dir: &str,
    what: &str,
) -> Result<
    Option<(
        crate::journal::Journal,
        crate::journal::JournalReader,
        crate::journal::Recovery,
    )>,
    StartError,
> {
    let durability = config.recorder.durability;
    if durability == crate::config::Durability::Memory {
        return Ok(None);
    }
    let path = config.server.data_dir.join(dir);
    let max_bytes = config.recorder.journal_max_bytes;
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || crate::journal::Journal::open(&path, durability, max_bytes))
        .await
        .map_err(|e| e.to_string())
        .and_then(|opened| opened.map_err(|e| e.to_string()))
        .map(Some)
        .map_err(|e| StartError::Setup(format!("cannot open the {what} ({shown}): {e}")))
}

/// Opens the store, prepares everything and starts answering on the configured address.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let (secrets, generated) = secrets::resolve(&config.secrets, &config.server.data_dir)?;
    let store = store::open(&config.database).await?;
    let report = store.migrate().await?;
    if !report.applied.is_empty() {
        tracing::info!(applied = ?report.applied, version = report.current, "Database migrated.");
    }
    crate::seed::bootstrap(store.as_ref(), &config.demo).await?;

    let snapshot = Arc::new(SnapshotCell::default());
    let config_file = Some(std::path::PathBuf::from(&config.source)).filter(|p| p.is_file());
    let supervisor = Arc::new(Supervisor::new(
        snapshot.clone(),
        store.clone(),
        config.plugins.clone(),
        config_file,
    ));
    if supervisor.reload().await.is_err() {
        tracing::warn!(
            "Starting with the built-in filters and actions only; fix the plugin errors and they load on the next change."
        );
        snapshot.rebuild(store.as_ref()).await?;
    }
    if let Some(dir) = &config.campaigns.dir {
        supervisor.set_campaign_files(Arc::new(crate::reload::CampaignFiles::new(dir.clone())));
        if supervisor.reload_campaign_files().await.is_err() {
            tracing::warn!(
                dir = %dir.display(),
                "Serving the stored campaigns; fix the campaign files and they load on the next change."
            );
        }
    }
    if config.plugins.watch {
        supervisor.spawn_watcher();
    }
    let journal = match open_journal(&config, "journal", "click journal").await? {
        None => None,
        Some((journal, reader, recovery)) => {
            tracing::info!(
                durability = ?config.recorder.durability,
                unconfirmed_segments = recovery.segments,
                torn_bytes = recovery.torn_bytes,
                unconfirmed_records = recovery.records,
                "Click journal opened."
            );
            Some((journal, reader))
        }
    };
    let held_postbacks =
        match open_journal(&config, "journal/postbacks", "postback journal").await? {
            None => None,
            Some((journal, reader, recovery)) => {
                if recovery.records > 0 || recovery.torn_bytes > 0 {
                    tracing::info!(
                        held = recovery.records,
                        torn_bytes = recovery.torn_bytes,
                        "Postbacks held by the previous run are applied as the database takes them."
                    );
                }
                Some((api::PostbackInbox::new(journal, &reader), reader))
            }
        };
    let (recorder, recorder_task) = ClickRecorder::start(
        store.clone(),
        &config.recorder,
        crate::recorder::SetAside::in_data_dir(&config.server.data_dir),
        journal,
    );

    let listener =
        TcpListener::bind(config.server.listen)
            .await
            .map_err(|e| StartError::Listen {
                addr: config.server.listen,
                message: e.to_string(),
            })?;
    let local_addr = listener.local_addr().map_err(|e| StartError::Listen {
        addr: config.server.listen,
        message: e.to_string(),
    })?;

    let fetcher = crate::fetch::Fetcher::new(
        crate::fetch::SsrfPolicy {
            allow: config.fetch.allow_networks.clone(),
        },
        config.fetch.timeout,
        config.fetch.max_bytes,
    )
    .map_err(StartError::Setup)?;
    let traffic = traffic_env(
        &config,
        &secrets.signing_key,
        true,
        &load_bot_list(store.as_ref()).await?,
    )?;
    seed_hit_counters(store.as_ref(), &snapshot, &traffic).await?;
    // Tracking first: a rebuild racing this start-up restore reads its own new caps.
    snapshot.track_caps(traffic.caps.clone());
    crate::reload::restore_caps(store.as_ref(), &snapshot.load(), &traffic.caps).await?;
    if config.triggers.enabled {
        let runner = crate::triggers::TriggerRunner::new(
            store.clone(),
            fetcher.clone(),
            snapshot.clone(),
            supervisor.clone(),
        );
        Arc::new(runner).spawn(config.triggers.tick);
    }
    let postbacks = crate::outbound::PostbackSender::start(
        store.clone(),
        fetcher.clone(),
        config.postback.retry_base,
        config.postback.max_attempts,
    );
    let user_code = crate::guard::UserCodePool::start(
        config.plugins.pool_threads,
        config.plugins.pool_queue,
        &config.plugins.guard,
    );
    let state = AppState::new(api::Shared {
        postbacks,
        postback_inbox: held_postbacks.as_ref().map(|(inbox, _)| inbox.clone()),
        config: Arc::new(config),
        reports: store.clone(),
        store,
        snapshot,
        recorder,
        secrets: Arc::new(secrets),
        started: Instant::now(),
        traffic: Arc::new(traffic),
        user_code,
        supervisor,
        fetcher,
        remote_cache: Arc::new(quick_cache::sync::Cache::new(1_024)),
    });
    let app = api::router(state.clone());
    let (stop, mut stop_rx) = watch::channel(false);
    let mut background = vec![tokio::spawn(api::apply_parked_postbacks(
        state.clone(),
        stop.subscribe(),
    ))];
    if let Some((inbox, reader)) = held_postbacks {
        background.push(tokio::spawn(api::drain_held_postbacks(
            state.clone(),
            inbox,
            reader,
            stop.subscribe(),
        )));
    }
    let serve = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        })
        .await
    });
    tracing::info!(%local_addr, "Switchyard is listening.");
    Ok(RunningServer {
        local_addr,
        generated_secrets: generated,
        state,
        stop,
        serve,
        recorder: recorder_task,
        background,
    })
}

/// The click path's services: GeoIP (watched for file changes when `watch`), UA parsing, bot
/// signals (with the stored bot list), visitor memory and the signer.
pub fn traffic_env(
    config: &Config,
    signing_key: &str,
    watch: bool,
    bot_list: &[IpNet],
) -> Result<TrafficEnv, StartError> {
    let setup = |e: String| StartError::Setup(e);
    let geo = Arc::new(
        crate::enrich::GeoResolver::open(&config.geoip).map_err(|e| setup(e.to_string()))?,
    );
    if !geo.is_enabled() {
        tracing::warn!(
            "No GeoIP City database is configured ([geoip] city_db): clicks get no country, region or city, and geo filters never match."
        );
    } else if watch {
        geo.spawn_watcher(Duration::from_secs(10));
    }
    let devices = crate::enrich::DeviceDetector::new(100_000).map_err(|e| setup(e.to_string()))?;
    let bots = crate::enrich::BotDetector::new(bot_list).map_err(|e| setup(e.to_string()))?;
    let mut traffic = TrafficEnv::in_memory(signing_key);
    let macro_files = Arc::new(crate::traffic::MacroFiles::open(
        config.server.data_dir.join("macro_files"),
    ));
    if watch {
        macro_files.spawn_watcher(Duration::from_secs(5));
    }
    traffic.macro_files = macro_files;
    traffic.enrichment = crate::enrich::Enrichment {
        geo,
        devices: Arc::new(devices),
        bots: Arc::new(bots),
    };
    Ok(traffic)
}

/// The stored bot list as networks; entries that do not parse are skipped with a warning.
pub async fn load_bot_list(store: &dyn Store) -> Result<Vec<IpNet>, StoreError> {
    Ok(crate::enrich::bot_networks(&store.bot_list().await?))
}

/// `limit` filters count a stream's clicks; the counts continue from the clicks table after a
/// restart (read once here, only for streams that have a `limit` filter).
async fn seed_hit_counters(
    store: &dyn Store,
    cell: &SnapshotCell,
    traffic: &TrafficEnv,
) -> Result<(), StoreError> {
    let snapshot = cell.load();
    let limited: Vec<i64> = snapshot
        .campaigns()
        .flat_map(|route| route.streams())
        .filter(|s| s.stream.filters.iter().any(|f| f.name == "limit"))
        .map(|s| s.stream.id)
        .collect();
    if limited.is_empty() {
        return Ok(());
    }
    let now = crate::model::unix_now();
    let counts = store
        .stream_hit_counts(
            &limited,
            now - now.rem_euclid(3_600),
            now - now.rem_euclid(86_400),
        )
        .await?;
    for (stream, hits) in counts {
        traffic.hits.seed(stream, now, hits);
    }
    tracing::info!(
        streams = limited.len(),
        "Stream hit counters restored for limit filters."
    );
    Ok(())
}

impl RunningServer {
    /// The store the server writes to (for tests and tooling).
    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// Stops accepting, lets in-flight requests finish (up to the configured grace), writes
    /// every queued click, closes the store.
    pub async fn shutdown(self) {
        tracing::info!("Shutting down: finishing in-flight requests.");
        let _ = self.stop.send(true);
        let grace = self.state.config.server.shutdown_grace;
        let mut serve = self.serve;
        match tokio::time::timeout(grace, &mut serve).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::error!(%error, "The HTTP server failed."),
            Ok(Err(error)) => tracing::error!(%error, "The HTTP server task failed."),
            Err(_) => {
                tracing::warn!(
                    grace_ms = grace.as_millis() as u64,
                    "In-flight requests outlived the grace period; closing them."
                );
                serve.abort();
            }
        }
        // Both bounded: the recorder by `recorder.drain_timeout_ms`, the postbacks being sent
        // by the grace period (the rest stay queued for the next start).
        let ((), unfinished) = tokio::join!(
            self.recorder.shutdown(),
            self.state.postbacks.shutdown(grace)
        );
        // They stop at the signal once the store call under way returns; one that takes longer
        // than a moment is cut short (what it was doing is redone, idempotently, next start).
        for mut task in self.background {
            if tokio::time::timeout(Duration::from_secs(1), &mut task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
        }
        if unfinished > 0 {
            tracing::warn!(
                unfinished,
                "Outgoing postbacks were still being sent at shutdown; they are sent again after their claim expires."
            );
        }
        let stats = self.state.recorder.stats();
        tracing::info!(
            written = stats.written,
            dropped = stats.dropped,
            "Clicks flushed."
        );
        self.state.store.close().await;
    }
}
