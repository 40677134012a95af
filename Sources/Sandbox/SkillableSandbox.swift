import Foundation
import GatewaySupport
import HTTPTypes
import Hummingbird
import Logging

/// A faithful local fake of the Skillable Lab on Demand API v3, as Hummingbird routes.
///
/// Mounted at `{prefix}/api/v3/{command}`: command and parameter names match case-insensitively, the
/// key must arrive in the `api_key` header, and every answer is the documented JSON with `Status` and
/// `Error` (errors with HTTP 200 and `Status: 0`). Lab URLs point at `{prefix}/lab/{id}`, a page that
/// stands in for the lab. `POST {prefix}/control` scripts outcomes for manual testing.
public struct SkillableSandbox: Sendable {
    public let state: SkillableSandboxState
    /// - Important: the key the fake accepts; any other is refused like a wrong key.
    public let apiKey: String
    public let prefix: String

    public init(apiKey: String, prefix: String = "/sandbox/skillable", state: SkillableSandboxState = .init()) {
        self.apiKey = apiKey
        self.prefix = prefix
        self.state = state
    }

    /// Adds the fake's routes to `router`.
    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        let group = router.group(RouterPath(prefix))
        group.get("api/v3/:command") { request, context in
            try await self.api(request, context: context)
        }
        group.get("lab/:id") { request, context in
            try await self.labPage(request, context: context)
        }
        group.get("deferred/:token") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(
                    byteBuffer: ByteBuffer(
                        string:
                            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Manage your labs (sandbox)</title></head>"
                            + "<body><main><h1>Manage your labs</h1><p>This page stands in for Skillable's deferred-launch page.</p></main></body></html>"
                    )))
        }
        group.post("control") { request, context in
            try await self.control(request, context: context)
        }
    }

    func api<Context: RequestContext>(_ request: Request, context: Context) async throws -> Response {
        let command = (context.parameters.get("command") ?? "").lowercased()
        guard request.headers[HTTPField.Name("api_key")!] == apiKey else {
            return Self.json(#"{"Error":"Invalid API key.","Status":0}"#)
        }
        var query: [String: String] = [:]
        for (name, value) in request.uri.queryParameters {
            // Names match case-insensitively; a lab variable keeps its own name's case.
            let lower = name.lowercased()
            query[lower.hasPrefix("variable-") ? "variable-" + name.dropFirst(9) : lower] = String(value)
        }
        let host = request.head.authority ?? "127.0.0.1"
        let prefix = self.prefix
        let labURL: @Sendable (Int64) -> String = { "http://\(host)\(prefix)/lab/\($0)" }
        let latency = await state.latency
        if latency > .zero { try await Task.sleep(for: latency) }
        switch await state.answer(command, query, labURL: labURL) {
        case .success(let body):
            return Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        case .failure(.serverError):
            return Response(
                status: .internalServerError, headers: [.contentType: "text/html"],
                body: .init(byteBuffer: ByteBuffer(string: "<html><body>Server Error</body></html>")))
        case .failure(.hang), .failure(.performThenHang):
            try await Task.sleep(for: await state.hangDuration)
            return Response(status: .gatewayTimeout)
        }
    }

    func labPage<Context: RequestContext>(_ request: Request, context: Context) async throws -> Response {
        guard let id = context.parameters.get("id").flatMap(Int64.init), let instance = await state.instance(id) else {
            return Response(
                status: .notFound, headers: [.contentType: "text/plain"],
                body: .init(byteBuffer: ByteBuffer(string: "No such sandbox lab.")))
        }
        let profile = await state.profiles.first { $0.id == instance.labProfileID }
        let title = HTMLEscaping.escape(profile?.name ?? "Lab \(instance.labProfileID)")
        let learner = HTMLEscaping.escape([instance.firstName, instance.lastName].compactMap { $0 }.joined(separator: " "))
        let html = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(title) (sandbox)</title></head>
            <body><main><h1>\(title)</h1><p>Sandbox lab instance \(instance.id) is \(instance.state.rawValue)\(learner.isEmpty ? "" : " for \(learner)").</p>
            <p>This page stands in for a Skillable lab.</p></main></body></html>
            """
        return Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// What `POST control` takes.
    static let controlParameters: Set<String> = ["reset", "results", "latencyMs", "fail", "command", "deferred"]

    /// `POST control` with `results=2,6&latencyMs=150&fail=500,hang,perform-then-hang&command=launch&deferred=1&reset=1`, in
    /// the query or a form body (`curl -d`); a parameter it does not know is refused, never ignored.
    func control<Context: RequestContext>(_ request: Request, context: Context) async throws -> Response {
        guard request.headers[HTTPField.Name("api_key")!] == apiKey else {
            return Response(status: .unauthorized)
        }
        var q: [String: Substring] = [:]
        for (name, value) in request.uri.queryParameters { q[String(name)] = value }
        let body = String(buffer: try await request.body.collect(upTo: 16 * 1024))
        for pair in body.split(separator: "&") where !body.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            q[parts[0]] = parts.count > 1 ? Substring(parts[1]) : ""
        }
        if let unknown = q.keys.sorted().first(where: { !Self.controlParameters.contains($0) }) {
            return Response(
                status: .badRequest, headers: [.contentType: "application/json; charset=utf-8"],
                body: .init(
                    byteBuffer: ByteBuffer(
                        string: #"{"Status":0,"Error":"unknown parameter \#(unknown.prefix(40).filter { $0.isLetter || $0.isNumber })"}"#)))
        }
        if q["reset"] != nil { await state.reset() }
        if let results = q["results"] {
            await state.scriptLaunchResults(results.split(separator: ",").compactMap { Int($0) })
        }
        if let ms = q["latencyMs"].flatMap({ Int($0) }) { await state.setLatency(.milliseconds(ms)) }
        if let fail = q["fail"] {
            await state.scriptFailures(
                fail.split(separator: ",").map {
                    $0 == "hang" ? .hang : $0 == "perform-then-hang" ? .performThenHang : .serverError
                }, command: q["command"].map(String.init))
        }
        if let deferred = q["deferred"].flatMap({ Int($0) }) { await state.scriptDeferredLaunches(deferred) }
        return Self.json(#"{"Status":1,"Error":null}"#)
    }

    static func json(_ text: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

}
