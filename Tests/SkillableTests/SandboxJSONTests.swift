import Foundation
import Testing

@testable import Sandbox

@Suite("Sandbox JSON answers")
struct SandboxJSONTests {
    @Test("answers are JSON that a standard parser reads back exactly: nulls, escapes, nested lists and objects")
    func roundTrip() throws {
        let missing: String? = nil
        let object: [String: Any?] = [
            "Status": 1, "Error": nil, "LabInstanceId": Int64(40_000_001), "Name": "Lab \"A\"\n\\ é ☃ \u{01}",
            "Enabled": true, "Missing": missing as Any?,
            "RunningLabs": [["LabInstanceId": Int64(7), "LabProfileName": Optional("x") as Any?]] as [[String: Any?]],
            "Empty": [[String: Any?]](),
        ]
        let data = SkillableSandboxState.serialize(object)
        let parsed = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(parsed["Status"] as? Int == 1 && parsed["Error"] is NSNull && parsed["Missing"] is NSNull)
        #expect(parsed["LabInstanceId"] as? Int == 40_000_001 && parsed["Enabled"] as? Bool == true)
        #expect(parsed["Name"] as? String == "Lab \"A\"\n\\ é ☃ \u{01}")
        let running = try #require(parsed["RunningLabs"] as? [[String: Any]])
        #expect(running.first?["LabProfileName"] as? String == "x" && running.first?["LabInstanceId"] as? Int == 7)
        #expect((parsed["Empty"] as? [Any])?.isEmpty == true)
    }
}

@Suite("Sandbox lab bound")
struct SandboxBoundTests {
    @Test("beyond maxInstances the oldest labs go, also from their learner's list")
    func eviction() async throws {
        let state = SkillableSandboxState()
        await state.setMaxInstances(3)
        for i in 0..<5 {
            _ = await state.answer("launch", ["labid": "1001", "userid": i < 3 ? "u1" : "u2", "maxactivelabs": "10"], labURL: { "http://lab/\($0)" })
        }
        #expect(await state.instances.count == 3)
        #expect(await state.learnersWithLabs == 2)
        for i in 0..<3 {
            _ = await state.answer("launch", ["labid": "1001", "userid": "u3-\(i)", "maxactivelabs": "10"], labURL: { "http://lab/\($0)" })
        }
        #expect(await state.learnersWithLabs == 3, "learners whose labs all went are still indexed")
        let u1 = await state.answer("userrunningandsavedlabs", ["userid": "u1"], labURL: { _ in "" })  // all of u1's labs went
        let listed = try JSONSerialization.jsonObject(with: try u1.get()) as? [String: Any]
        #expect((listed?["RunningLabs"] as? [[String: Any]])?.isEmpty == true)
    }
}
