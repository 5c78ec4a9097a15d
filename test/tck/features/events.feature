Feature: Provider events

  # flagops' translation of flagd-testbed gherkin/events.feature. Each scenario has a
  # server of its own, which it stops and starts again on the same address; the TCK's
  # "connection is lost for 3s" becomes "the connection is lost" then "restored", with
  # a grace period shorter than the time it waits (no fixed sleeps).

  Background:
    Given a flagops server of its own

  Scenario: Provider events chain ready -> error -> ready
    Given a stable flagops provider with a grace period of 1 second
    And a ready event handler
    And a error event handler
    Then the ready event handler should have been executed
    When the connection is lost
    Then the error event handler should have been executed
    When the connection is restored
    Then the ready event handler should have been executed

  Scenario: Provider events chain ready -> stale -> error -> ready
    Given a stable flagops provider with a grace period of 1 second
    And a ready event handler
    And a error event handler
    And a stale event handler
    Then the ready event handler should have been executed
    When the connection is lost
    Then the stale event handler should have been executed
    Then the error event handler should have been executed
    When the connection is restored
    Then the ready event handler should have been executed

  Scenario: Provider events chain ready -> stale -> ready
    Given a stable flagops provider with a grace period of 600 seconds
    And a ready event handler
    And a error event handler
    And a stale event handler
    Then the ready event handler should have been executed
    When the connection is lost
    Then the stale event handler should have been executed
    When the connection is restored
    Then the ready event handler should have been executed
    And the error event handler should not have been executed

  Scenario: Flag change event
    Given a stable flagops provider
    And a String-flag with key "changing-flag" and a default value "false"
    And a change event handler
    When the flag was modified
    And a change event was fired
    Then the flag should be part of the event payload
    When the flag was evaluated with details
    Then the resolved details value should be "bar"
