//! Live progress on stderr (on a terminal only), and each node's report printed as soon as it
//! and every node before it are done, so output stays in the expanded order.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use pacha_core::{NodeReport, Reporter};

/// Handles one node's finished report, in the expanded order.
pub(crate) type OnNode<'a> = Box<dyn Fn(usize, &NodeReport) + Sync + 'a>;

/// The CLI's [`Reporter`].
pub(crate) struct Progress<'a> {
    bar: Option<ProgressBar>,
    on_node: OnNode<'a>,
    pending: Mutex<(usize, BTreeMap<usize, NodeReport>)>,
}

impl<'a> Progress<'a> {
    /// Progress over `count` nodes, a bar only when `show` and stderr is a terminal.
    pub(crate) fn new(count: usize, show: bool, on_node: OnNode<'a>) -> Progress<'a> {
        let bar = (show && io::stderr().is_terminal() && count > 0).then(|| {
            let bar = ProgressBar::new(count as u64);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            on_node,
            pending: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Clears the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for Progress<'_> {
    fn step(&self, node: &str, step: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{node}: {step}"));
        }
    }

    fn finished(&self, index: usize, report: &NodeReport) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.1.insert(index, report.clone());
        loop {
            let next = pending.0;
            let Some(ready) = pending.1.remove(&next) else {
                break;
            };
            match &self.bar {
                Some(bar) => bar.suspend(|| (self.on_node)(next, &ready)),
                None => (self.on_node)(next, &ready),
            }
            pending.0 += 1;
        }
    }
}
