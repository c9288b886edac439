//! `tracelab import FILE... -o scenario.yaml`: a scenario inferred from traces (see
//! `tracelab_import`), written as a commented YAML file that passes `tracelab check`.
//!
//! Each file is read as a stream in whatever format it is in (OTLP/JSON, Jaeger JSON, Zipkin
//! v2 JSON, or a run directory's spans), one trace at a time; the import keeps counts and
//! bounded samples, not spans. A trace whose spans are split over two files is read as two.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use tracelab_import::{ImportOptions, Imported, Importer};

/// `tracelab import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Trace files (OTLP/JSON, Jaeger JSON or Zipkin v2 JSON; the format is told from the
    /// content) or run directories.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Where to write the scenario.
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    /// The scenario's name (default: the output file's name without its extension).
    #[arg(long)]
    pub name: Option<String>,
    /// Replace every name the traces hold (services, routes, work, caches, tables, topics,
    /// baggage) by a numbered placeholder, and leave out query texts and versions.
    #[arg(long)]
    pub anonymize: bool,
}

/// Reads `files` and infers their scenario; progress and warnings go to stderr.
pub fn import_files(files: &[PathBuf], options: ImportOptions) -> anyhow::Result<Imported> {
    let mut importer = Importer::new();
    let mut options = options;
    for input in files {
        let path = crate::diff::spans_file(input);
        let before = importer.traces();
        let summary = crate::spans::stream_traces(&path, &mut |trace| importer.add(&trace))
            .with_context(|| format!("cannot read traces from {}", path.display()))?;
        eprintln!(
            "read {}: {}, {} traces, {} spans",
            path.display(),
            summary.format,
            importer.traces() - before,
            summary.spans
        );
        options.sources.push(format!(
            "{} ({})",
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into()
            ),
            summary.format
        ));
    }
    Ok(importer.finish(&options)?)
}

/// `tracelab import`: writes the scenario and says how to run and compare it.
pub fn import_command(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let out = args.out.as_path();
    let name = args.name.clone().unwrap_or_else(|| default_name(out));
    let options = ImportOptions {
        name,
        anonymize: args.anonymize,
        sources: Vec::new(),
        output: Some(out.display().to_string()),
    };
    let imported = import_files(&args.files, options)?;
    let yaml = imported.to_yaml();
    // The file must say exactly what was inferred: read it back as `check` would.
    let file = out.display().to_string();
    match tracelab_scenario::parse(&yaml, &file) {
        Ok(read) if read == imported.scenario => {}
        Ok(_) => anyhow::bail!("the written scenario reads back differently (please report this)"),
        Err(diagnostics) => anyhow::bail!(
            "the written scenario does not pass check (please report this):\n{diagnostics}"
        ),
    }
    std::fs::write(out, &yaml).with_context(|| format!("cannot write {file}"))?;
    let scenario = &imported.scenario;
    let routes: usize = scenario.services.values().map(|s| s.routes.len()).sum();
    println!(
        "{file}: {} services, {routes} routes, {} entry routes at {} requests/s for {}",
        scenario.services.len(),
        scenario.load.entries.len(),
        scenario.load.rate,
        humantime::format_duration(scenario.load.duration)
    );
    println!("  run it:      tracelab run {file} --out RUN_DIR");
    if let Some(first) = args.files.first() {
        println!(
            "  compare it:  tracelab diff {} RUN_DIR",
            crate::diff::spans_file(first).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The output file's name without its extension, or `imported`.
fn default_name(out: &Path) -> String {
    out.file_stem()
        .map(|s| s.to_string_lossy().trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "imported".to_owned())
}
