import Skillable

/// The Skillable commands launches and the too-many-labs page's actions use: ``SkillableClient`` in
/// production, a scripted fake in unit tests.
protocol SkillableLabService: Sendable {
    func launch(_ request: SkillableLaunchRequest) async throws -> SkillableLaunchResponse
    func userRunningAndSavedLabs(userID: String) async throws -> SkillableUserLabs
    func resume(labInstanceID: Int64) async throws -> SkillableURLResponse
    func cancel(labInstanceID: Int64, note: String?) async throws
    func labAccessURL(labInstanceID: Int64) async throws -> SkillableURLResponse
}

extension SkillableClient: SkillableLabService {}
