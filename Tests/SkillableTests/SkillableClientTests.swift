import AsyncHTTPClient
import Foundation
import GatewaySupport
import Hummingbird
import HummingbirdTesting
import LTITestSupport
import Logging
import NIOCore
import NIOHTTP1
import Sandbox
import Skillable
import Testing

/// Runs the sandbox on 127.0.0.1 (free port) and hands a client bound to it to `body`.
func withSandbox(
    apiKey: String = "sandbox-test-key", clientKey: String? = nil, timeout: TimeAmount = .seconds(5),
    recorder: LogRecorder = LogRecorder(),
    _ body: @escaping @Sendable (SkillableClient, SkillableSandboxState, Int) async throws -> Void
) async throws {
    let sandbox = SkillableSandbox(apiKey: apiKey)
    let router = Router()
    sandbox.addRoutes(to: router)
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    try await withHTTPClient { http in
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let settings = SkillableClientSettings(
                baseURL: { "http://127.0.0.1:\(port)/sandbox/skillable/api/v3" },
                apiKey: clientKey ?? apiKey, timeout: timeout)
            try await body(SkillableClient(http: http, settings: settings, logger: recorder.logger()), sandbox.state, port)
        }
    }
}

@Suite("Skillable client against the sandbox (Lab API v3)")
struct SkillableClientTests {
    @Test("the sandbox's control takes its parameters from a form body (curl -d) as from the query, and refuses unknown ones")
    func controlByForm() async throws {
        try await withSandbox { client, _, port in
            func control(_ body: String) async throws -> (Int, String) {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/sandbox/skillable/control")
                request.method = .POST
                request.headers.add(name: "api_key", value: "sandbox-test-key")
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                request.body = .bytes(ByteBuffer(string: body))
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 4096)))
            }
            #expect(try await control("results=2").0 == 200)
            #expect(try await client.launch(SkillableLaunchRequest(labID: 1001, userID: "u")).result == .userTooManyActiveLabs)
            let (status, body) = try await control("resluts=2")
            #expect(status == 400 && body.contains("unknown parameter resluts"))
        }
    }

    @Test("launch starts a lab: Result 1, Url, LabInstanceId, Expires; names, email and variables reach Skillable")
    func launchSuccess() async throws {
        try await withSandbox { client, state, port in
            let response = try await client.launch(
                SkillableLaunchRequest(
                    labID: 1001, userID: "lti-abc", firstName: "Ada", lastName: "Lovelace", email: "ada@example.edu",
                    tag: "course-9", variables: ["LtiContextId": "course-9"]))
            #expect(response.result == .success)
            #expect(response.status == 1)
            let id = try #require(response.labInstanceID)
            #expect(response.url == "http://127.0.0.1:\(port)/sandbox/skillable/lab/\(id)")
            #expect(response.expires != nil)
            let instance = try #require(await state.instances[id])
            #expect(instance.userID == "lti-abc" && instance.firstName == "Ada" && instance.email == "ada@example.edu")
            #expect(instance.variables == ["LtiContextId": "course-9"])
            #expect(await state.lastQuery["launch"]?["userid"] == "lti-abc")
        }
    }

    @Test("a wrong api_key is refused with Status 0 and HTTP 200, as Skillable documents errors")
    func wrongKey() async throws {
        try await withSandbox(clientKey: "wrong-key") { client, state, _ in
            let response = try await client.launch(SkillableLaunchRequest(labID: 1001, userID: "u"))
            #expect(response.result == .error && response.status == 0)
            #expect(response.error == "Invalid API key.")
            await #expect(throws: SkillableError.self) { _ = try await client.catalog() }
            #expect(await state.totalCalls == 0)
        }
    }

    @Test("command and parameter names match case-insensitively")
    func caseInsensitive() async throws {
        try await withSandbox { _, state, port in
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/sandbox/skillable/api/v3/LAUNCH?LabId=1002&UserID=u-1")
            request.headers.add(name: "api_key", value: "sandbox-test-key")
            let body = try await withHTTPClient { http in
                let response = try await http.execute(request, timeout: .seconds(5))
                return String(buffer: try await response.body.collect(upTo: 1 << 20))
            }
            #expect(body.contains(#""Result":1"#))
            #expect(await state.calls["launch"] == 1)
        }
    }

    @Test(
        "result codes map to the enum, unknown codes are kept raw",
        arguments: [
            (2, SkillableLaunchResult.userTooManyActiveLabs), (3, .insufficientHostResources), (6, .userHasSavedInstance),
            (110, .notAvailableThroughAPI(110)), (140, .invalidRequest), (160, .userMustProvideMoreInformation), (999, .unknown(999)),
        ])
    func resultCodes(code: Int, expected: SkillableLaunchResult) async throws {
        try await withSandbox { client, state, _ in
            await state.scriptLaunchResults([code])
            let response = try await client.launch(SkillableLaunchRequest(labID: 1001, userID: "u"))
            #expect(response.result == expected)
            #expect(response.result.code == code)
            #expect(response.url == nil)
        }
    }

    @Test("the sandbox behaves as documented: saved lab → 6, too many running → 2, not launchable → error")
    func naturalOutcomes() async throws {
        try await withSandbox { client, state, _ in
            let first = try await client.launch(SkillableLaunchRequest(labID: 1001, userID: "u", maxActiveLabs: 2))
            _ = try await client.launch(SkillableLaunchRequest(labID: 1002, userID: "u", maxActiveLabs: 2))
            #expect(try await client.launch(SkillableLaunchRequest(labID: 1003, userID: "u", maxActiveLabs: 2)).result == .userTooManyActiveLabs)
            await state.save(instanceID: try #require(first.labInstanceID))
            #expect(try await client.launch(SkillableLaunchRequest(labID: 1001, userID: "u")).result == .userHasSavedInstance)
            let draft = try await client.launch(SkillableLaunchRequest(labID: 1004, userID: "v"))
            #expect(draft.result == .error && draft.error?.contains("not available") == true)
        }
    }

    @Test("catalog, running and saved labs, resume, access URL, details and cancel")
    func otherCommands() async throws {
        try await withSandbox { client, state, _ in
            let catalog = try await client.catalog()
            #expect(catalog.labProfiles.count == 5)
            #expect(catalog.labProfiles.filter(\.isLaunchable).map(\.id) == [1001, 1002, 1003])
            let launched = try await client.launch(SkillableLaunchRequest(labID: 1001, userID: "u"))
            let id = try #require(launched.labInstanceID)
            #expect(try await client.labAccessURL(labInstanceID: id).url?.hasSuffix("/lab/\(id)") == true)
            await state.save(instanceID: id)
            let labs = try await client.userRunningAndSavedLabs(userID: "u")
            #expect(labs.runningLabs.isEmpty && labs.savedLabs.map(\.labInstanceID) == [id])
            #expect(labs.savedLabs.first?.labProfileName == "Create a Virtual Machine in Azure")
            #expect(try await client.resume(labInstanceID: id).url != nil)
            #expect(try await client.details(labInstanceID: id).userExternalID == "u")
            try await client.cancel(labInstanceID: id)
            #expect(await state.instances[id]?.state == .cancelled)
            await #expect(throws: SkillableError.self) { try await client.cancel(labInstanceID: id) }
        }
    }

    @Test("HTTP 500 with an HTML body is an http_status error; a hung call times out")
    func failures() async throws {
        try await withSandbox(timeout: .seconds(2)) { client, state, _ in
            await state.setHangDuration(.seconds(4))
            await state.scriptFailures([.serverError, .hang])
            do {
                _ = try await client.launch(SkillableLaunchRequest(labID: 1001, userID: "u"))
                Issue.record("500 accepted")
            } catch let error as SkillableError {
                #expect(error.code == .httpStatus && error.httpStatus == 500 && error.requestMayHaveArrived)
            }
            do {
                _ = try await client.launch(SkillableLaunchRequest(labID: 1001, userID: "u"))
                Issue.record("hang accepted")
            } catch let error as SkillableError {
                #expect(error.code == .timeout && error.requestMayHaveArrived)
            }
        }
    }

    @Test("an answer whose body stops midway times out within the call's deadline")
    func stalledBody() async throws {
        try await withStallingServer(stall: .seconds(6)) { port in
            try await withHTTPClient { http in
                let client = SkillableClient(
                    http: http,
                    settings: SkillableClientSettings(
                        baseURL: { "http://127.0.0.1:\(port)/api/v3" }, apiKey: "k", timeout: .milliseconds(300)),
                    logger: LogRecorder().logger())
                let code = try await withDeadline(.seconds(4)) { () async -> SkillableError.Code? in
                    do {
                        _ = try await client.launch(SkillableLaunchRequest(labID: 1001, userID: "u"))
                        return nil
                    } catch {
                        return (error as? SkillableError)?.code
                    }
                }
                #expect(code == .timeout)
            }
        }
    }

    @Test("connection refused is a transport error that cannot have started a lab")
    func connectionRefused() async throws {
        try await withHTTPClient { http in
            let client = SkillableClient(
                http: http,
                settings: .init(
                    baseURL: { "http://127.0.0.1:1/api/v3" }, apiKey: "k",
                    timeout: .seconds(2)), logger: Logger(label: "t"))
            do {
                _ = try await client.catalog()
                Issue.record("no error")
            } catch let error as SkillableError {
                #expect(error.code == .transport || error.code == .timeout)
                #expect(!error.requestMayHaveArrived)
            }
        }
    }

    @Test("the API key never appears in the client's logs")
    func keyNotLogged() async throws {
        let recorder = LogRecorder()
        try await withSandbox(apiKey: "SECRET-skillable-key-123", recorder: recorder) { client, state, _ in
            await state.scriptFailures([.serverError])
            _ = try? await client.catalog()
            _ = try await client.launch(SkillableLaunchRequest(labID: 1001, userID: "u"))
        }
        #expect(!recorder.all.isEmpty)
        #expect(recorder.lines(containing: "SECRET-skillable-key-123").isEmpty)
    }
}
