//! Walking through every item of a paged list.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use futures::stream::BoxStream;

use crate::error::Error;
use crate::model::ApiModel;

/// One page of a list, as the pagination stream needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// This page's number, from 1.
    pub page: u64,
    /// How many pages there are (0 when the list is empty).
    pub pages: u64,
    /// How many items there are on all pages; 0 when the API does not say.
    pub total: u64,
}

impl<T> Page<T> {
    /// Whether a page follows this one.
    pub fn has_next(&self) -> bool {
        !self.items.is_empty() && self.page < self.pages
    }
}

/// Every item of every page of a list, fetched lazily: the next page is
/// requested only once the items of the current one have been taken.
///
/// The stream ends after the last page (or at an empty page). A failed
/// fetch is yielded once as an `Err`, and then the stream ends. The
/// generated crate names it `Paginated<T>`.
pub struct Paginated<T, M: ApiModel> {
    inner: BoxStream<'static, Result<T, Error<M>>>,
}

impl<T, M: ApiModel> Stream for Paginated<T, M> {
    type Item = Result<T, Error<M>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<T, M: ApiModel> fmt::Debug for Paginated<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paginated").finish_non_exhaustive()
    }
}

/// The state of a pagination stream between items.
struct Walk<T, F> {
    items: std::vec::IntoIter<T>,
    /// The page to fetch once `items` is used up; `None` after the last one.
    next: Option<u64>,
    fetch: F,
}

/// Streams the items of every page from `first_page` on, calling `fetch`
/// with each page number when its items are needed.
// Called by the generated paged-list operations, which a spec may not have.
#[allow(dead_code)]
pub(crate) fn paginate<T, M, F, Fut>(first_page: u64, fetch: F) -> Paginated<T, M>
where
    T: Send + 'static,
    M: ApiModel,
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Page<T>, Error<M>>> + Send + 'static,
{
    let walk = Walk { items: Vec::new().into_iter(), next: Some(first_page), fetch };
    let inner = futures::stream::unfold(walk, |mut walk| async move {
        loop {
            if let Some(item) = walk.items.next() {
                return Some((Ok(item), walk));
            }
            let number = walk.next.take()?;
            match (walk.fetch)(number).await {
                Ok(page) => {
                    // The requested number counts, not only the echoed one,
                    // so a server repeating a page number cannot loop us.
                    let current = page.page.max(number);
                    if !page.items.is_empty() && current < page.pages {
                        walk.next = Some(current + 1);
                    }
                    walk.items = page.items.into_iter();
                }
                Err(err) => return Some((Err(err), walk)),
            }
        }
    });
    Paginated { inner: Box::pin(inner) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use futures::executor::block_on;
    use std::sync::{Arc, Mutex};

    type Error = super::Error<crate::testing::Model>;

    /// A fake list of `total` numbers in pages of `limit`, recording which
    /// pages were fetched.
    fn fake_list(
        total: u64,
        limit: u64,
        fetched: Arc<Mutex<Vec<u64>>>,
    ) -> impl FnMut(u64) -> futures::future::Ready<Result<Page<u64>, Error>> + Send + 'static {
        move |page| {
            fetched.lock().unwrap().push(page);
            let pages = total.div_ceil(limit);
            let start = (page - 1) * limit;
            let items = (start..total.min(start + limit)).collect();
            futures::future::ready(Ok(Page { items, page, pages, total }))
        }
    }

    #[test]
    fn walks_all_pages_in_order() {
        let fetched = Arc::new(Mutex::new(Vec::new()));
        let items: Vec<u64> = block_on(paginate(1, fake_list(7, 3, fetched.clone())).map(Result::unwrap).collect());
        assert_eq!(items, (0..7).collect::<Vec<_>>());
        assert_eq!(*fetched.lock().unwrap(), [1, 2, 3]);
    }

    #[test]
    fn fetches_lazily() {
        let fetched = Arc::new(Mutex::new(Vec::new()));
        let mut stream = paginate(1, fake_list(9, 3, fetched.clone()));
        block_on(async {
            assert_eq!(stream.next().await.unwrap().unwrap(), 0);
            assert_eq!(*fetched.lock().unwrap(), [1]);
            stream.next().await;
            stream.next().await;
            // The first page is used up, yet the second is not fetched
            // until its first item is asked for.
            assert_eq!(*fetched.lock().unwrap(), [1]);
            assert_eq!(stream.next().await.unwrap().unwrap(), 3);
            assert_eq!(*fetched.lock().unwrap(), [1, 2]);
        });
    }

    #[test]
    fn starts_at_the_given_page() {
        let fetched = Arc::new(Mutex::new(Vec::new()));
        let items: Vec<u64> = block_on(paginate(2, fake_list(7, 3, fetched.clone())).map(Result::unwrap).collect());
        assert_eq!(items, [3, 4, 5, 6]);
        assert_eq!(*fetched.lock().unwrap(), [2, 3]);
    }

    #[test]
    fn empty_list_fetches_once() {
        let fetched = Arc::new(Mutex::new(Vec::new()));
        let items: Vec<Result<u64, Error>> = block_on(paginate(1, fake_list(0, 3, fetched.clone())).collect());
        assert!(items.is_empty());
        assert_eq!(*fetched.lock().unwrap(), [1]);
    }

    #[test]
    fn stops_at_an_empty_page_even_if_pages_says_more() {
        let calls = Arc::new(Mutex::new(0));
        let counter = calls.clone();
        let stream = paginate(1, move |page| {
            *counter.lock().unwrap() += 1;
            let items = if page == 1 { vec![1, 2] } else { vec![] };
            futures::future::ready(Ok::<_, Error>(Page { items, page, pages: 10, total: 20 }))
        });
        let items: Vec<u32> = block_on(stream.map(Result::unwrap).collect());
        assert_eq!(items, [1, 2]);
        assert_eq!(*calls.lock().unwrap(), 2);
    }

    #[test]
    fn error_is_yielded_once_then_the_stream_ends() {
        let stream = paginate(1, |page| {
            futures::future::ready(if page == 1 {
                Ok(Page { items: vec![1, 2], page, pages: 3, total: 6 })
            } else {
                Err(Error::Timeout)
            })
        });
        let items: Vec<Result<u32, Error>> = block_on(stream.collect());
        assert_eq!(items.len(), 3);
        assert!(matches!(items[0], Ok(1)));
        assert!(matches!(items[1], Ok(2)));
        assert!(matches!(items[2], Err(Error::Timeout)));
    }

    #[test]
    fn a_server_echoing_the_same_page_cannot_loop() {
        let calls = Arc::new(Mutex::new(0));
        let counter = calls.clone();
        let stream = paginate(1, move |_page| {
            *counter.lock().unwrap() += 1;
            futures::future::ready(Ok::<_, Error>(Page { items: vec![0u8], page: 1, pages: 3, total: 3 }))
        });
        let items: Vec<u8> = block_on(stream.map(Result::unwrap).collect());
        assert_eq!(items.len(), 3);
        assert_eq!(*calls.lock().unwrap(), 3);
    }

    #[test]
    fn has_next() {
        let page = Page { items: vec![1], page: 1, pages: 2, total: 2 };
        assert!(page.has_next());
        assert!(!Page { page: 2, ..page.clone() }.has_next());
        assert!(!Page::<u8> { items: vec![], page: 1, pages: 2, total: 2 }.has_next());
    }

    #[test]
    fn paginated_is_send_and_unpin() {
        fn assert_bounds<T: Send + Unpin + 'static>() {}
        assert_bounds::<Paginated<String, crate::testing::Model>>();
    }
}
