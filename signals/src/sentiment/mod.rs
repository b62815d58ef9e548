//! Social sentiment: posts scored in-process with VADER and aggregated into fixed intervals.

mod aggregate;
mod lexicon;
mod posts;
mod vader;

pub use aggregate::{Aggregator, SentimentBucket, aggregate_posts};
pub use posts::{
    Post, VolumePoint, load_posts, load_volume_series, parse_posts, parse_volume_series,
};
pub use vader::{Polarity, polarity_scores};
