Strategie republikánské strany proti Obamovu znovuzvolení
Republikánští lídři odůvodnili svou politiku nezbytností boje proti volebním podvodům.
Brennanovo středisko však takový podvod označuje za mýtus s tím, že volební podvod je v USA méně častý než počet osob, které zemřou po zásahu bleskem.
Republikánští advokáti ostatně za posledních deset let zaznamenali pouze 300 případů volebních podvodů v USA.
Jedno je jisté: tato nová ustanovení budou mít negativní dopad na volební účast.
V tomto smyslu tato opatření částečně podkopou americký demokratický systém.
Na rozdíl od Kanady mají v USA odpovědnost za organizaci federálních voleb jednotlivé státy.
A v tomto duchu většina amerických vlád od roku 2009 vyhlašuje nové zákony, které ztěžují proces volby nebo zápisu do volebního seznamu.
