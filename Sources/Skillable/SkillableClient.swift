import AsyncHTTPClient
import Foundation
import GatewaySupport
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix

/// Where and how to reach the Lab on Demand API v3.
public struct SkillableClientSettings: Sendable {
    /// The API base, e.g. `https://labondemand.com/api/v3`, read on every call so that a sandbox whose
    /// port is known only after start-up can be used.
    public var baseURL: @Sendable () -> String
    /// - Important: Secret. Sent only in the `api_key` header; never logged.
    public var apiKey: String
    /// Deadline for one API call.
    public var timeout: TimeAmount
    /// Largest answer read.
    public var maxResponseBytes: Int

    public init(
        baseURL: @escaping @Sendable () -> String, apiKey: String, timeout: TimeAmount = .seconds(10),
        maxResponseBytes: Int = 4 * 1024 * 1024
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
    }
}

/// A failed call to the Lab API, with a stable code for logs and metrics.
public struct SkillableError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The request could not be sent or no answer came (connection refused, reset).
        case transport
        case timeout
        /// An HTTP status other than 200.
        case httpStatus = "http_status"
        /// `Status: 0` with an `Error` message.
        case apiError = "api_error"
        /// The answer is not the documented JSON.
        case malformedResponse = "malformed_response"
    }

    public var code: Code
    public var command: String
    public var message: String
    public var httpStatus: Int?
    /// Whether the request may have reached Skillable (so that a retry must first check for a started lab).
    public var requestMayHaveArrived: Bool

    public init(code: Code, command: String, message: String, httpStatus: Int?, requestMayHaveArrived: Bool) {
        self.code = code
        self.command = command
        self.message = message
        self.httpStatus = httpStatus
        self.requestMayHaveArrived = requestMayHaveArrived
    }

    /// Worth retrying: no answer, a timeout, 5xx or 429. A refusal in the envelope or a malformed answer is not.
    public var isTransient: Bool {
        switch code {
        case .transport, .timeout: true
        case .httpStatus: (httpStatus ?? 0) >= 500 || httpStatus == 429
        case .apiError, .malformedResponse: false
        }
    }

    public var description: String {
        "skillable \(command) \(code.rawValue)\(httpStatus.map { " http \($0)" } ?? ""): \(message)"
    }
}

/// Typed client of the Lab on Demand API v3 (vendor-apis.md; `skillable-lab-api-v3.openapi.yaml`).
///
/// RPC style `GET /{command}?{query}`, the key in the `api_key` header, every answer a JSON envelope with
/// `Status` and `Error` (errors arrive with HTTP 200 and `Status: 0`).
public struct SkillableClient: Sendable {
    let http: HTTPClient
    let settings: SkillableClientSettings
    let logger: Logger
    let decoder = JSONDecoder()

    public init(http: HTTPClient, settings: SkillableClientSettings, logger: Logger) {
        self.http = http
        self.settings = settings
        self.logger = logger
    }

    /// `Launch`: starts a lab for a user. Non-success results are returned, not thrown.
    public func launch(_ request: SkillableLaunchRequest) async throws -> SkillableLaunchResponse {
        try await call("Launch", request.query, as: SkillableLaunchResponse.self, checkStatus: false)
    }

    /// `Catalog`: the lab profiles available to this API consumer.
    public func catalog() async throws -> SkillableCatalog {
        try await call("Catalog", [], as: SkillableCatalog.self)
    }

    /// `UserRunningAndSavedLabs`.
    public func userRunningAndSavedLabs(userID: String) async throws -> SkillableUserLabs {
        try await call("UserRunningAndSavedLabs", [("userid", userID)], as: SkillableUserLabs.self)
    }

    /// `Resume`: resumes a saved lab; returns its URL.
    public func resume(labInstanceID: Int64) async throws -> SkillableURLResponse {
        try await call("Resume", [("labinstanceid", String(labInstanceID))], as: SkillableURLResponse.self)
    }

    /// `Cancel`: ends a lab instance.
    public func cancel(labInstanceID: Int64, note: String? = nil) async throws {
        var query = [("labinstanceid", String(labInstanceID))]
        if let note { query.append(("note", note)) }
        _ = try await call("Cancel", query, as: SkillableEnvelope.self)
    }

    /// `Details` of a lab instance.
    public func details(labInstanceID: Int64) async throws -> SkillableLabDetails {
        try await call("Details", [("labinstanceid", String(labInstanceID))], as: SkillableLabDetails.self)
    }

    /// `LabAccessUrl`: a fresh single-use URL into a running lab.
    public func labAccessURL(labInstanceID: Int64) async throws -> SkillableURLResponse {
        try await call("LabAccessUrl", [("labInstanceId", String(labInstanceID))], as: SkillableURLResponse.self)
    }

    private func call<T: Decodable>(
        _ command: String, _ query: [(String, String)], as _: T.Type,
        checkStatus: Bool = true
    ) async throws -> T {
        let started = ContinuousClock.now
        var outcome = "ok"
        defer {
            let elapsed = ContinuousClock.now - started
            Timer(label: "skillable_request_duration_seconds", dimensions: [("command", command), ("outcome", outcome)])
                .recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        }
        do {
            return try await send(command, query, as: T.self, checkStatus: checkStatus)
        } catch let error as SkillableError {
            outcome = error.code.rawValue
            logger.warning(
                "skillable call failed",
                metadata: [
                    "skillable.command": "\(command)", "skillable.error": "\(error.code.rawValue)",
                    "skillable.http_status": "\(error.httpStatus.map(String.init) ?? "-")", "skillable.message": "\(error.message)",
                ])
            throw error
        }
    }

    private func send<T: Decodable>(
        _ command: String, _ query: [(String, String)], as _: T.Type,
        checkStatus: Bool
    ) async throws -> T {
        var base = settings.baseURL()
        while base.hasSuffix("/") { base.removeLast() }
        let encoded = FormEncoding.encode(query)
        var request = HTTPClientRequest(url: base + "/" + command + (encoded.isEmpty ? "" : "?" + encoded))
        request.method = .GET
        request.headers.add(name: "api_key", value: settings.apiKey)
        request.headers.add(name: "Accept", value: "application/json")

        // One deadline for the whole exchange: the answer's head, then its body in what time is left.
        let deadline = ContinuousClock.now + .nanoseconds(settings.timeout.nanoseconds)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: settings.timeout)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw SkillableError(
                code: .timeout, command: command, message: "no answer within the deadline",
                httpStatus: nil, requestMayHaveArrived: true)
        } catch let error as HTTPClientError where error == .connectTimeout {
            throw SkillableError(
                code: .timeout, command: command, message: "could not connect within the deadline",
                httpStatus: nil, requestMayHaveArrived: false)
        } catch {
            throw SkillableError(
                code: .transport, command: command, message: "\(type(of: error))",
                httpStatus: nil, requestMayHaveArrived: !Self.isConnectionFailure(error))
        }
        let body: ByteBuffer
        do {
            body = try await withDeadline(deadline - .now) { [maxBytes = settings.maxResponseBytes] in
                try await response.body.collect(upTo: maxBytes)
            }
        } catch is DeadlineExceeded {
            throw SkillableError(
                code: .timeout, command: command, message: "the answer's body did not arrive within the deadline",
                httpStatus: Int(response.status.code), requestMayHaveArrived: true)
        } catch {
            throw SkillableError(
                code: .transport, command: command, message: "answer unreadable or too large",
                httpStatus: Int(response.status.code), requestMayHaveArrived: true)
        }
        guard response.status == .ok else {
            throw SkillableError(
                code: .httpStatus, command: command, message: "HTTP \(response.status.code)",
                httpStatus: Int(response.status.code), requestMayHaveArrived: true)
        }
        // One parse: the envelope (Status, Error) and the command's own fields are read from the same document.
        guard let answer = try? decoder.decode(SkillableAnswer<T>.self, from: Data(body.readableBytesView)) else {
            throw SkillableError(
                code: .malformedResponse, command: command, message: "answer is not a JSON object",
                httpStatus: 200, requestMayHaveArrived: true)
        }
        if checkStatus, answer.envelope.status != 1 {
            throw SkillableError(
                code: .apiError, command: command, message: answer.envelope.error ?? "Status \(answer.envelope.status ?? 0)",
                httpStatus: 200, requestMayHaveArrived: true)
        }
        guard let fields = answer.fields else {
            throw SkillableError(
                code: .malformedResponse, command: command, message: "answer lacks documented fields",
                httpStatus: 200, requestMayHaveArrived: true)
        }
        return fields
    }

    /// True for errors raised before a connection existed, so the request cannot have arrived.
    static func isConnectionFailure(_ error: any Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let error = error as? IOError {
            return [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL].contains(error.errnoCode)
        }
        return false
    }

}
