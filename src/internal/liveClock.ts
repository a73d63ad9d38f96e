/**
 * The clock Effect runs with unless another is provided (its time `Date.now`, its sleep a
 * `setTimeout`), and what may use plain timers under it. Under any other clock (the tests'
 * `TestClock`) time moves its own way, so code keeps to `Clock` there.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"

export const liveClock: Clock.Clock = Context.get(DefaultServices.liveServices, Clock.Clock)

/** Longer delays never fire, as with the live clock's sleep. */
export const maxTimerMillis = 2 ** 31 - 1

/**
 * A sleep for housekeeping that must not keep a finished process alive: under the live clock
 * an unref'd timer, under any other clock the clock's own sleep.
 */
export const backgroundSleep = (millis: number): Effect.Effect<void> =>
  Effect.clockWith((clock) =>
    clock !== liveClock || millis > maxTimerMillis
      ? Effect.sleep(millis)
      : Effect.async<void>((resume) => {
        const timer = setTimeout(() => resume(Effect.void), millis)
        timer.unref()
        return Effect.sync(() => clearTimeout(timer))
      })
  )
