//! Reading the next page of an export while the last one is being written out: a stream of pages
//! driven by a task of its own, one page ahead of whoever reads it.

use futures_util::stream::{self, Stream, StreamExt};

/// `pages`, fetched by a task of its own up to `ahead` pages before they are asked for, so the
/// database's work on the next page overlaps the caller's work on this one. When the reader goes
/// (a download abandoned), the task stops at its next page; memory stays at `ahead` pages.
pub fn read_ahead<T: Send + 'static>(
    pages: impl Stream<Item = T> + Send + 'static,
    ahead: usize,
) -> impl Stream<Item = T> + Send + 'static {
    let (sender, receiver) = tokio::sync::mpsc::channel(ahead.max(1));
    tokio::spawn(async move {
        let mut pages = std::pin::pin!(pages);
        while let Some(page) = pages.next().await {
            if sender.send(page).await.is_err() {
                break;
            }
        }
    });
    stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|page| (page, receiver))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn pages_arrive_in_order_and_reading_stops_when_the_reader_goes() {
        let all: Vec<u32> = read_ahead(stream::iter(0..100u32), 2).collect().await;
        assert_eq!(all, (0..100).collect::<Vec<_>>());

        let fetched = Arc::new(AtomicUsize::new(0));
        let counter = fetched.clone();
        let endless = stream::repeat(()).then(move |()| {
            let counter = counter.clone();
            async move { counter.fetch_add(1, Ordering::SeqCst) }
        });
        let mut pages = Box::pin(read_ahead(endless, 2));
        assert_eq!(pages.next().await, Some(0));
        drop(pages);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        // One read, two waiting in the channel, one waiting to be sent: an endless source read
        // on regardless would be thousands by now.
        let fetched = fetched.load(Ordering::SeqCst);
        assert!(fetched <= 4, "reading stopped a few pages ahead: {fetched}");
    }
}
