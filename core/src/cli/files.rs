//! The command-line side of config-as-files: `switchyard validate` (the directory part),
//! `switchyard export DIR` and `switchyard diff [DIR]`.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::registry::Registry;

/// The registry files are checked against: built-ins plus the configured scripts and native
/// plugins. Plugin problems are printed; the built-ins are used alone then.
fn registry_for(config: &Config) -> Registry {
    match crate::reload::load_plugins(&config.plugins) {
        Ok(loaded) => loaded.registry,
        Err(errors) => {
            for error in errors {
                eprintln!("plugin error: {error}");
            }
            Registry::builtin()
        }
    }
}

/// Checks the campaigns directory offline; prints each problem as `file:line: key: message`
/// (the file path as given plus the file inside it). True when it is valid.
pub fn validate_dir(config: &Config, dir: &Path) -> bool {
    match crate::files::load_dir(dir, &registry_for(config)) {
        Ok(loaded) => {
            println!(
                "{}: the campaign files are valid ({} objects).",
                dir.display(),
                loaded.set.object_count()
            );
            true
        }
        Err(problems) => {
            eprintln!(
                "{}: the campaign files have {} problem{}:",
                dir.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            for problem in problems {
                let mut shown = problem.clone();
                if !shown.file.is_empty() && !Path::new(&shown.file).is_absolute() {
                    shown.file = dir.join(&shown.file).display().to_string();
                }
                eprintln!("  - {shown}");
            }
            false
        }
    }
}

/// `switchyard export DIR`: writes every stored object (not deleted) as files under `dir`.
pub async fn export(config: Config, dir: &Path) -> anyhow::Result<()> {
    let store = crate::store::open(&config.database).await?;
    store.migrate().await?;
    let stored = store.file_objects().await;
    store.close().await;
    let set = stored?.live_set();
    let written = crate::files::export_files(dir, &set).map_err(|e| anyhow::anyhow!(e))?;
    for name in &written {
        println!("{}", dir.join(name).display());
    }
    println!(
        "Exported {} objects into {} file(s).",
        set.object_count(),
        written.len()
    );
    Ok(())
}

/// `switchyard diff [DIR]`: what loading `dir` would change. Exit 0 when nothing, 1 when
/// something would change, 2 when the directory has problems (printed).
pub fn diff(config: Config, dir: Option<&Path>) -> ExitCode {
    let Some(dir) = dir
        .or(config.campaigns.dir.as_deref())
        .map(Path::to_path_buf)
    else {
        eprintln!("no directory: give one (`switchyard diff DIR`) or set [campaigns] dir");
        return ExitCode::from(2);
    };
    if !validate_dir(&config, &dir) {
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let registry = registry_for(&config);
    let result = runtime.block_on(async {
        let loaded = crate::files::load_dir(&dir, &registry)
            .map_err(|_| anyhow::anyhow!("the directory changed while it was read"))?;
        let store = crate::store::open(&config.database).await?;
        store.migrate().await?;
        let stored = store.file_objects().await;
        store.close().await;
        anyhow::Ok(crate::files::plan_changes(&loaded, &stored?))
    });
    match result {
        Ok(plan) if plan.is_empty() => {
            println!("No changes.");
            ExitCode::SUCCESS
        }
        Ok(plan) => {
            for change in &plan.changes {
                println!("{change}");
            }
            println!("{} change(s).", plan.changes.len());
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
