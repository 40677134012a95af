import Foundation
import GatewayStorage
import HTTPTypes
import Hummingbird
import LTICore
import Logging
import Metrics
import NIOHTTP1

/// Turns every error into a page (or JSON for `/api/`), logs it once with its reason and reference id,
/// and adds `X-Request-Id` to every response.
///
/// - Important: The only place errors become HTTP. Underlying errors are logged, never rendered.
struct GatewayErrorMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let pages: PageRenderer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            let gatewayError = Self.gatewayError(for: error)
            log(gatewayError, request: request, context: context)
            if request.uri.path.hasPrefix("/api/") || request.uri.path.hasPrefix("/webhooks/") {
                response = Self.json(gatewayError)
            } else if let restart = gatewayError.newWindow {
                response = pages.newWindowPage(gatewayError, reference: context.referenceID, restart: restart)
            } else {
                response = pages.errorPage(gatewayError, reference: context.referenceID)
            }
            response = Self.closingIfNeeded(response, for: gatewayError)
            if let seconds = gatewayError.retryAfter { response.headers[.retryAfter] = String(seconds) }
            if let challenge = gatewayError.challenge { response.headers[.wwwAuthenticate] = challenge }
        }
        response.headers[.xRequestID] = context.referenceID
        return response
    }

    /// Adds `Connection: close` to the answer of `error` when the rest of its request must not be read
    /// (``ConnectionGuard`` then closes the connection once the answer is written).
    private static func closingIfNeeded(_ response: Response, for error: GatewayError) -> Response {
        guard error.closesConnection else { return response }
        var response = response
        response.headers[.connection] = "close"
        return response
    }

    static func gatewayError(for error: any Error) -> GatewayError {
        switch error {
        case let error as GatewayError:
            return error
        case let refusal as LaunchRefusal:
            return GatewayError(refusal)
        case let error as StorageError where error.code == .unavailable:
            return GatewayError(
                code: .storageUnavailable, status: .serviceUnavailable, title: "Busy for a moment",
                message: "The gateway cannot record this request right now. Please try again in a few seconds.", underlying: error)
        case is RequestReadTimeout:
            return GatewayError(
                code: .requestTimeout, status: .requestTimeout, title: "Request too slow",
                message: "The request did not arrive in time. Please try again.", underlying: error)
        case let error as HTTPParserError:
            return GatewayError(
                code: .malformedRequest, status: .badRequest, title: "Request refused",
                message: "The request could not be read.", underlying: error)
        case let error as HTTPError:
            switch error.status {
            case .notFound: return .notFound()
            case .contentTooLarge:
                return GatewayError(
                    code: .requestTooLarge, status: .contentTooLarge, title: "Request too large",
                    message: "The request is larger than this gateway accepts.", underlying: error)
            case .methodNotAllowed:
                return GatewayError(
                    code: .methodNotAllowed, status: .methodNotAllowed, title: "Not allowed",
                    message: "This address does not accept this kind of request.", underlying: error)
            default:
                return GatewayError(
                    code: .badRequest, status: error.status.code < 500 ? error.status : .internalServerError,
                    title: "Request refused", message: "The request could not be handled.", underlying: error)
            }
        default:
            return GatewayError(
                code: .internalError, status: .internalServerError, title: "Something went wrong",
                message:
                    "The gateway could not complete this request. Please try again; if it keeps happening, give your administrator the reference below.",
                underlying: error)
        }
    }

    func log(_ error: GatewayError, request: Request, context: Context) {
        var metadata: Logger.Metadata = [
            "gw.error": .string(error.code.rawValue), "http.status": .stringConvertible(error.status.code),
            "http.path": .string(request.uri.path),
        ]
        if let rule = error.rule { metadata["lti.rule"] = .string(rule) }
        if let underlying = error.underlying { metadata["error.underlying"] = .string(String(describing: underlying)) }
        Counter(label: "gateway_refusals_total", dimensions: [("code", error.code.rawValue)]).increment()
        if error.status.code >= 500 {
            context.logger.error("\(error.message)", metadata: metadata)
        } else {
            context.logger.notice("\(error.message)", metadata: metadata)
        }
    }

    /// The admin API's error body: `{"error":{"type":…,"message":…}}`, plus `param` for a bad parameter. The
    /// reference id is in `X-Request-Id`, so that the two authentication bodies stay exactly as documented.
    static func json(_ error: GatewayError) -> Response {
        var inner: [(String, JSONValue)] = [("type", .string(error.code.rawValue)), ("message", .string(error.message))]
        if let param = error.param { inner.append(("param", .string(param))) }
        return JSONValue.object([("error", .object(inner))]).response(status: error.status)
    }
}
