"""German and English stop words the keyword counts leave out (a small list, bundled on purpose).

Only words of three letters or more: shorter ones are dropped anyway.
"""

from __future__ import annotations

_GERMAN = """
aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes
auch auf aus bei beim bin bis bist bitte da dabei dadurch dafür dagegen daher dahin damals damit
danach dann daran darauf daraus darf darfst darin darum darunter das dass dasselbe davon davor
dazu dein deine deinem deinen deiner deines dem demselben den denn denselben der derer derselbe
derselben des deshalb desselben dessen dich die dies diese dieselbe dieselben diesem diesen
dieser dieses dir doch dort du durch eben ein eine einem einen einer eines einig einige einigem
einigen einiger einiges einmal er es etwas euch euer eure eurem euren eurer eures für gegen
gewesen gibt hab habe haben hat hatte hatten hattest hier hin hinter ich ihm ihn ihnen ihr ihre
ihrem ihren ihrer ihres im immer in ins ist ja jede jedem jeden jeder jedes jetzt jene jenem
jenen jener jenes kann kannst kein keine keinem keinen keiner keines können könnte man manche
manchem manchen mancher manches mehr mein meine meinem meinen meiner meines mich mir mit muss
musste müssen nach nicht nichts noch nun nur ob oder ohne schon sehr sein seine seinem seinen
seiner seines seit selbst sich sie sind so solche solchem solchen solcher solches soll sollen
sollte sondern sonst über um und uns unser unsere unserem unseren unserer unseres unter viel
vom von vor wann war waren warst warum was weg weil weiter welche welchem welchen welcher welches
wenn wer werde werden wie wieder will wir wird wirst wo wollen wollte würde würden zu zum zur
zwar zwischen hallo danke bzw usw schon mal gerade heute gestern morgen wurde wurden bereits
""".split()

_ENGLISH = """
about above after again against all also and any are aren't because been before being below
between both but can can't cannot could couldn't did didn't does doesn't doing don't down
during each few for from further had hadn't has hasn't have haven't having he'd he'll he's her
here here's hers herself him himself his how how's i'd i'll i'm i've into isn't it's its itself
just let's more most mustn't myself nor not now off once only other ought our ours ourselves
out over own same shan't she she'd she'll she's should shouldn't some such than that that's the
their theirs them themselves then there there's these they they'd they'll they're they've this
those through too under until very was wasn't we'd we'll we're we've were weren't what what's
when when's where where's which while who who's whom why why's will with won't would wouldn't
you you'd you'll you're you've your yours yourself yourselves hello thanks thank please got get
still yet really one two would like
""".split()

STOP_WORDS: frozenset[str] = frozenset(
    word for word in (*_GERMAN, *_ENGLISH, *(w.replace("'", "’") for w in _ENGLISH))
)
