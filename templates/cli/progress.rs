//! A progress indicator on standard error while a command waits, shown
//! only when standard error is a terminal, so pipes and logs stay clean.

use std::io::{IsTerminal, Write};

/// Runs `work`, showing `label` with a spinner and the time waited.
pub async fn while_waiting<F: std::future::Future>(label: &str, work: F) -> F::Output {
    if !std::io::stderr().is_terminal() {
        return work.await;
    }
    const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
    let started = std::time::Instant::now();
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(120));
    tokio::pin!(work);
    let mut frame = 0;
    let output = loop {
        tokio::select! {
            output = &mut work => break output,
            _ = ticks.tick() => {
                frame = (frame + 1) % FRAMES.len();
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{} {label} ({}s)", FRAMES[frame], started.elapsed().as_secs());
                let _ = err.flush();
            }
        }
    };
    let mut err = std::io::stderr().lock();
    // Clears the indicator's line.
    let _ = write!(err, "\r\x1b[2K");
    let _ = err.flush();
    output
}
