//! A gRPC echo service (tonic, messages declared with prost derives, no code generation) served
//! over h2c, and a client over TLS: enough to see unary and server-streaming calls, with their
//! trailers, cross the proxy.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use tonic::codec::ProstCodec;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// `echo.EchoRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    /// Text to echo.
    #[prost(string, tag = "1")]
    pub message: String,
    /// Streaming calls: how many replies.
    #[prost(uint32, tag = "2")]
    pub count: u32,
}

/// `echo.EchoReply`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    /// The echoed text (with the reply's index in streams).
    #[prost(string, tag = "1")]
    pub message: String,
}

/// The service; `fail` makes every call answer that status instead.
#[derive(Clone, Debug)]
pub struct Echo {
    name: &'static str,
    fail: Option<tonic::Code>,
}

impl tonic::server::NamedService for Echo {
    const NAME: &'static str = "echo.Echo";
}

struct Unary(Echo);

impl tonic::server::UnaryService<EchoRequest> for Unary {
    type Response = EchoReply;
    type Future = BoxFuture<tonic::Response<EchoReply>, tonic::Status>;
    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        let echo = self.0.clone();
        Box::pin(async move {
            if let Some(code) = echo.fail {
                return Err(tonic::Status::new(code, "this pool is failing"));
            }
            Ok(tonic::Response::new(EchoReply {
                message: format!("{}:{}", echo.name, request.into_inner().message),
            }))
        })
    }
}

struct Streaming(Echo);

type ReplyStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<EchoReply, tonic::Status>> + Send>>;

impl tonic::server::ServerStreamingService<EchoRequest> for Streaming {
    type Response = EchoReply;
    type ResponseStream = ReplyStream;
    type Future = BoxFuture<tonic::Response<ReplyStream>, tonic::Status>;
    // The stream's item type is tonic's (`Result<_, Status>`); its size is not ours to choose.
    #[allow(clippy::result_large_err)]
    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        let echo = self.0.clone();
        Box::pin(async move {
            if let Some(code) = echo.fail {
                return Err(tonic::Status::new(code, "this pool is failing"));
            }
            let req = request.into_inner();
            let replies: Vec<_> = (0..req.count)
                .map(|i| {
                    Ok(EchoReply {
                        message: format!("{}:{}:{i}", echo.name, req.message),
                    })
                })
                .collect();
            let stream: ReplyStream = Box::pin(tokio_stream::iter(replies));
            Ok(tonic::Response::new(stream))
        })
    }
}

impl<B> Service<http::Request<B>> for Echo
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::BoxBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let echo = self.clone();
        match req.uri().path() {
            "/echo.Echo/Unary" => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
                Ok(grpc.unary(Unary(echo), req).await)
            }),
            "/echo.Echo/Stream" => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
                Ok(grpc.server_streaming(Streaming(echo), req).await)
            }),
            _ => Box::pin(
                async move { Ok(tonic::Status::unimplemented("no such method").into_http()) },
            ),
        }
    }
}

/// A running h2c gRPC server; stops when dropped.
pub struct GrpcEcho {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl GrpcEcho {
    /// Serves `Echo` named `name` (replies start with it); with `fail`, every call fails so.
    pub async fn start(name: &'static str, fail: Option<tonic::Code>) -> GrpcEcho {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind grpc");
        let addr = listener.local_addr().expect("addr");
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let task = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(Echo { name, fail })
                .serve_with_incoming(incoming)
                .await;
            if let Err(e) = served {
                eprintln!("grpc echo {name} stopped: {e}");
            }
        });
        GrpcEcho { addr, task }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for GrpcEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client over TLS (ALPN h2) to `addr`, trusting `ca_pem` and verifying `domain`.
pub async fn tls_client(
    addr: SocketAddr,
    domain: &str,
    ca_pem: &str,
) -> tonic::client::Grpc<Channel> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(domain);
    let channel = Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("connect through the proxy");
    tonic::client::Grpc::new(channel)
}

/// One unary call.
pub async fn unary(
    client: &mut tonic::client::Grpc<Channel>,
    message: &str,
) -> Result<EchoReply, tonic::Status> {
    client
        .ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let req = tonic::Request::new(EchoRequest {
        message: message.to_string(),
        count: 0,
    });
    let path = http::uri::PathAndQuery::from_static("/echo.Echo/Unary");
    client
        .unary(req, path, ProstCodec::default())
        .await
        .map(tonic::Response::into_inner)
}

/// One server-streaming call: every reply, then the trailers' `grpc-status`.
pub async fn stream(
    client: &mut tonic::client::Grpc<Channel>,
    message: &str,
    count: u32,
) -> Result<(Vec<String>, Option<String>), tonic::Status> {
    client
        .ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let req = tonic::Request::new(EchoRequest {
        message: message.to_string(),
        count,
    });
    let path = http::uri::PathAndQuery::from_static("/echo.Echo/Stream");
    let mut replies = client
        .server_streaming::<_, EchoReply, _>(req, path, ProstCodec::default())
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = replies.message().await? {
        out.push(r.message);
    }
    let trailers = replies.trailers().await?;
    let status = trailers.and_then(|t| {
        t.get("grpc-status")
            .and_then(|v| v.to_str().ok().map(str::to_string))
    });
    Ok((out, status))
}
